// Softmax / LogSoftmax over the last axis from the row statistics of softmax_stats.wgsl:
// y = exp(x - m) / l, or (LOG) y = x - m - log(l). Override: LOG.
#include <common.wgsl>

override LOG: bool = false;

struct Params { n: u32, D: u32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> row_m: array<f32>;
@group(0) @binding(2) var<storage, read> row_l: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let row = i / p.D;
    let d = src[i] - row_m[row];
    if (LOG) {
        dst[i] = d - log(row_l[row]);
    } else {
        dst[i] = exp(d) / row_l[row];
    }
}
