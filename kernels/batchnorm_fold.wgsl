// Batch-norm statistics -> the per-channel affine map of batchnorm.wgsl:
// sb = [scale * inverseSqrt(variance + epsilon), offset - mean * that].
#include <common.wgsl>

struct Params { C: u32, epsilon: f32 }

@group(0) @binding(0) var<storage, read> scale: array<f32>;
@group(0) @binding(1) var<storage, read> offset: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read_write> sb: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = flat_id(wid, nwg, lid);
    if (c >= p.C) { return; }
    let s = scale[c] * inverseSqrt(variance[c] + p.epsilon);
    sb[c] = s;
    sb[p.C + c] = offset[c] - mean[c] * s;
}
