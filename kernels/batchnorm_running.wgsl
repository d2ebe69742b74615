// FusedBatchNorm training outputs 1 and 2 from the batch statistics (mean, biased variance):
// out_mean = (1 - f) * running_mean + f * mean, out_var = (1 - f) * running_var + f * var * n/(n-1)
// with f = exponential_avg_factor (the running statistics are not read when f = 1).
#include <common.wgsl>

struct Params { C: u32, factor: f32, correction: f32 }

@group(0) @binding(0) var<storage, read> mean: array<f32>;
@group(0) @binding(1) var<storage, read> variance: array<f32>;
@group(0) @binding(2) var<storage, read> running_mean: array<f32>;
@group(0) @binding(3) var<storage, read> running_var: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_var: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = flat_id(wid, nwg, lid);
    if (c >= p.C) { return; }
    var m = mean[c];
    var v = variance[c] * p.correction;
    if (p.factor != 1.0) {
        m = (1.0 - p.factor) * running_mean[c] + p.factor * m;
        v = (1.0 - p.factor) * running_var[c] + p.factor * v;
    }
    out_mean[c] = m;
    out_var[c] = v;
}
