// OneHot: out[o] = on if indices[src] == d else off, where the output is indices' shape with a
// `depth` dim inserted at the axis: o = (outer * depth + d) * inner + r, src = outer * inner + r.
// Indices outside [0, depth) give `off` everywhere (TensorFlow's rule). Template: T.
#include <common.wgsl>

struct Params { n: u32, depth: u32, inner: u32 }

@group(0) @binding(0) var<storage, read> indices: array<i32>;
@group(0) @binding(1) var<storage, read> on_value: array<{{T}}>;
@group(0) @binding(2) var<storage, read> off_value: array<{{T}}>;
@group(0) @binding(3) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let o = flat_id(wid, nwg, lid);
    if (o >= p.n) { return; }
    let r = o % p.inner;
    let q = o / p.inner;
    let d = q % p.depth;
    let outer = q / p.depth;
    let hit = indices[outer * p.inner + r] == i32(d);
    dst[o] = select(off_value[0], on_value[0], hit);
}
