// LRN (local response normalization over the last dim, TensorFlow's definition):
// out = x / (bias + alpha * sum_{c' in [c - r, c + r]} x[c']^2) ^ beta.
#include <common.wgsl>

struct Params { n: u32, depth: u32, radius: u32, bias: f32, alpha: f32, beta: f32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let o = flat_id(wid, nwg, lid);
    if (o >= p.n) { return; }
    let c = o % p.depth;
    let row = o - c;
    let lo = select(0u, c - p.radius, c >= p.radius);
    let hi = min(p.depth - 1u, c + p.radius);
    var s = 0.0;
    for (var k = lo; k <= hi; k++) {
        let v = src[row + k];
        s += v * v;
    }
    dst[o] = src[o] / pow(p.bias + p.alpha * s, p.beta);
}
