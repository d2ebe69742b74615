// Split-K second pass of conv2d_tiled.wgsl (SPLIT): y[i] = the epilogue (residual, activation:
// conv_epilogue.wgsl) of bias + the sum over s of x[s * n + i], with x the partial-sums buffer
// [splits, m, 4*n4] and the bias the packed filter w's last row (row bias_row). One invocation
// per output vec4; the bindings are the convolution kernels' (conv_bindings.wgsl).
#include <common.wgsl>
#include <conv_epilogue.wgsl>

struct Params {
    n: u32, n4: u32, splits: u32, bias_row: u32,  // output vec4s (m * n4), channel vec4s, slices, filter row
    alpha: f32, hi: f32,                          // activation slope and cap (PWL)
}

#include <conv_bindings.wgsl>

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let c = i % p.n4;
    var v = w[p.bias_row * p.n4 + c];
    for (var s = 0u; s < p.splits; s++) { v += x[s * p.n + i]; }
    y[i] = activate_at(v, epilogue4_params(4u * c, p.alpha), i);
}
