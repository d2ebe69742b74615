// Split-K second pass: dst[z, m, n] = finish(sum over s of part[z * splits + s, m, n]), with
// part [.., M, Np] (Np = N padded to a multiple of 4); the epilogue (and its residual, in dst's
// layout) runs here, not in the partial sums. Template: T. One invocation per output.
#include <common.wgsl>
#include <epilogue.wgsl>
#include <matmul_finish.wgsl>

struct Params { n: u32, M: u32, N: u32, Np: u32, splits: u32, alpha: f32 }

@group(0) @binding(0) var<storage, read> part: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(2) var<storage, read> ep_bias: array<f32>;
@group(0) @binding(3) var<storage, read> ep_scale: array<f32>;
@group(0) @binding(4) var<storage, read> ep_alpha: array<f32>;
@group(0) @binding(5) var<storage, read> ep_residual: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let n = i % p.N;
    let zm = i / p.N;                           // z * M + m
    let z = zm / p.M;
    let at = (zm + z * (p.splits - 1u) * p.M) * p.Np + n;   // part[z * splits, m, n]
    var acc = bias_of(n);
    for (var s = 0u; s < p.splits; s++) { acc += part[at + s * p.M * p.Np]; }
    dst[i] = finish_r(acc, n, p.alpha, residual(i));
}
