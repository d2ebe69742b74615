// Where (the coordinates of non-zero elements, in row-major order) as a GPU compaction in three
// launches, so that only the count has to be read back:
//   MODE 0  count:   counts[b] = non-zeros in block b (BLOCK elements per invocation)
//   MODE 1  scan:    one invocation: offsets[b] = non-zeros before block b; offsets[nblocks] = total
//   MODE 2  scatter: block b writes the coordinates of its non-zeros from row offsets[b] on
// Template: T (the input's element type; -0.0 counts as zero). Coordinates unravel the flat index
// by the input's dims (uniform, at most 8).
#include <common.wgsl>

override MODE: u32 = 0u;
override BLOCK: u32 = 256u;

struct Params {
    n: u32, nblocks: u32, rank: u32,
    dims_lo: vec4<u32>, dims_hi: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> x: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> coords: array<i32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = flat_id(wid, nwg, lid);
    if (MODE == 1u) {
        if (b != 0u) { return; }
        var run = 0u;
        for (var k = 0u; k < p.nblocks; k++) {
            let c = counts[k];
            counts[k] = run;
            run += c;
        }
        counts[p.nblocks] = run;
        return;
    }
    if (b >= p.nblocks) { return; }
    let lo = b * BLOCK;
    let hi = min(p.n, lo + BLOCK);
    if (MODE == 0u) {
        var c = 0u;
        for (var i = lo; i < hi; i++) {
            if (x[i] != {{T}}(0)) { c++; }
        }
        counts[b] = c;
        return;
    }
    var row = counts[b];
    for (var i = lo; i < hi; i++) {
        if (x[i] == {{T}}(0)) { continue; }
        var rem = i;
        for (var k = 0u; k < p.rank; k++) {
            let d = p.rank - 1u - k;
            let size = at8(p.dims_lo, p.dims_hi, d);
            coords[row * p.rank + d] = i32(rem % size);
            rem = rem / size;
        }
        row++;
    }
}
