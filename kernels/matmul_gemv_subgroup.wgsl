// C = A x B for a few rows (M <= MAX_M: a classifier at batch 1) with B a model weight packed
// transposed on the host: bt [N, K4] vec4s along K, zero padded. Each subgroup computes whole
// output columns: its lanes stride along K (consecutive lanes read consecutive vec4s of bt's row
// and of A's rows: coalesced loads), then subgroupAdd sums the lanes' partial dot products. One
// pass, no workgroup memory, no partial sums in memory; any subgroup size. Subgroup s of
// workgroup g takes columns (g * num_subgroups + s) + j * (workgroups * num_subgroups), j in
// [0, rounds): the host sizes the grid for subgroups of 32 lanes, others loop or idle.
// A [M, K4] vec4s (zero padded); dst [M, N]; the fused epilogue of matmul_finish.wgsl (the
// residual in dst's layout). Needs the "subgroup" feature. Template: T (f32).
#include <common.wgsl>
#include <epilogue.wgsl>
#include <matmul_finish.wgsl>

const MAX_M: u32 = 8u;

struct Params { M: u32, N: u32, K4: u32, alpha: f32 }

@group(0) @binding(0) var<storage, read> mat_a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> bt: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> ep_bias: array<f32>;
@group(0) @binding(4) var<storage, read> ep_scale: array<f32>;
@group(0) @binding(5) var<storage, read> ep_alpha: array<f32>;
@group(0) @binding(6) var<storage, read> ep_residual: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) nsg: u32,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) width: u32) {
    let first = (wid.y * nwg.x + wid.x) * nsg + sg;
    let stride = nwg.x * nwg.y * nsg;              // subgroups in the grid
    let rounds = (p.N + stride - 1u) / stride;     // the same in every subgroup
    for (var j = 0u; j < rounds; j++) {
        let n = first + j * stride;                // this round's column (past N: idle)
        var acc: array<f32, MAX_M>;
        if (n < p.N) {
            for (var k0 = 0u; k0 < p.K4; k0 += width) {
                let k = k0 + lane;
                if (k < p.K4) {
                    let w = bt[n * p.K4 + k];
                    for (var r = 0u; r < p.M; r++) { acc[r] += dot(mat_a[r * p.K4 + k], w); }
                }
            }
        }
        for (var r = 0u; r < p.M; r++) {
            let s = subgroupAdd(acc[r]);
            if (lane == 0u && n < p.N) {
                let i = r * p.N + n;
                dst[i] = finish_r(bias_of(n) + s, n, p.alpha, residual(i));
            }
        }
    }
}
