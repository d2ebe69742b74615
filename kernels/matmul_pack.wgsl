// Repack a matmul operand into the vec4-ready layout matmul.wgsl reads:
// dst[z, r, c] = src[z * sz + r * sr + c * sc] for r < rows, c < cols, 0 in the padding up to
// rows_p x cols_p (cols_p a multiple of 4). Serves transposes and K / N not multiples of 4.
// Template: T.
#include <common.wgsl>

struct Params { n: u32, rows: u32, cols: u32, rows_p: u32, cols_p: u32, sz: u32, sr: u32, sc: u32 }

@group(0) @binding(0) var<storage, read> src: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let c = i % p.cols_p;
    let r = (i / p.cols_p) % p.rows_p;
    let z = i / (p.cols_p * p.rows_p);
    var v = {{T}}(0);
    if (r < p.rows && c < p.cols) { v = src[z * p.sz + r * p.sr + c * p.sc]; }
    dst[i] = v;
}
