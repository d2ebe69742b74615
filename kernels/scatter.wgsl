// Scatter rows into a tensor already holding its base values (SparseToDense after the default
// fill, TensorScatterUpdate after the copy of `tensor`): update row j goes to the element block
// sum_k indices[j, k] * stride_k (blocks of `inner` elements); a row whose index is outside the
// shape is skipped. Override SCALAR: every row writes updates[0] (SparseToDense's scalar
// values). Duplicate indices: one of the rows wins (TensorFlow leaves it unspecified).
// 4-byte elements of any type move as u32.
#include <common.wgsl>

override SCALAR: bool = false;

struct Params {
    n: u32, depth: u32, inner: u32,      // n: rows * inner; depth: index tuple length
    bounds_lo: vec4<u32>, bounds_hi: vec4<u32>,
    strides_lo: vec4<u32>, strides_hi: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> indices: array<i32>;
@group(0) @binding(1) var<storage, read> updates: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.n) { return; }
    let j = t / p.inner;
    let e = t - j * p.inner;
    var flat = 0u;
    for (var k = 0u; k < p.depth; k++) {
        let v = indices[j * p.depth + k];
        if (v < 0 || u32(v) >= at8(p.bounds_lo, p.bounds_hi, k)) { return; }
        flat += u32(v) * at8(p.strides_lo, p.strides_hi, k);
    }
    var u = updates[0];
    if (!SCALAR) { u = updates[t]; }
    dst[flat * p.inner + e] = u;
}
