// MatrixBandPart: element (i, j) of each [rows, cols] matrix is kept when (lower < 0 or
// i - j <= lower) and (upper < 0 or j - i <= upper), else zero. Template: T.
#include <common.wgsl>

struct Params { n: u32, rows: u32, cols: u32, lower: i32, upper: i32 }

@group(0) @binding(0) var<storage, read> src: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let o = flat_id(wid, nwg, lid);
    if (o >= p.n) { return; }
    let j = i32(o % p.cols);
    let i = i32((o / p.cols) % p.rows);
    let keep = (p.lower < 0 || i - j <= p.lower) && (p.upper < 0 || j - i <= p.upper);
    dst[o] = select({{T}}(0), src[o], keep);
}
