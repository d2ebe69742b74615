// Convolution as an implicit matmul, NHWC: y[m, n] = bias[n] + sum over (tap, k) of
// x[pixel(m, tap), k] * w[tap, k, n], then the activation. Included by conv2d.wgsl /
// conv2d_subgroup.wgsl, which define (element j for output channel vec4 c0 + j, clamped to the last)
//   fn wrow(row: u32, c0: u32, lid: u32) -> array<vec4<f32>, 8>     filter row `row`
//   fn wtile(row: u32, c0: u32, lid: u32) -> array<mat4x4<f32>, 8>  rows row..row+3 as columns
//
// Layouts (channels padded by the host to multiples of 4): x [N, H, W, 4*k4], y [M, 4*n4],
// w [taps * 4*k4 filter rows, then the bias row; 4*n4] (batch-norm scale folded in).
// Each invocation computes 4 output pixels x 32 output channels (register blocking, vec4 loads,
// no workgroup memory: what llvmpipe runs fastest). TRANSPOSED gathers from the output gradient
// (Conv2DBackpropInput). A reduction longer than llvmpipe's loop cap runs as several passes over
// filter rows [ky0, ky1) and channel blocks [c0, c1): the first adds the bias, the others
// ACCUMULATE into y, and only the last adds the residual (HAS_RESIDUAL) and applies the
// activation (the host makes it the identity for the others).
#include <common.wgsl>
#include <conv_epilogue.wgsl>

#include <conv_params.wgsl>

override TRANSPOSED: bool = false;
override ACCUMULATE: bool = false;
override WG: u32 = 64u;

#include <conv_bindings.wgsl>
#include <conv_tap.wgsl>
#include <conv_store.wgsl>

fn load_x(pixel: i32, c: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), x[u32(max(pixel, 0)) * p.k4 + c], pixel >= 0);
}

// Stores column block c (4 channels) of the 4 rows from m0: acc's column i is row m0 + i.
fn store(m0: u32, c: u32, acc: mat4x4<f32>) {
    if (c >= p.n4) { return; }
    let e = epilogue4_params(4u * c, p.alpha);
    for (var i = 0u; i < 4u; i++) { store_at(m0 + i, c, acc[i], e); }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // rows of 4 pixels along x (folded into z past 65535 groups), blocks of 32 channels along y;
    // out-of-range rows compute clamped garbage and store nothing (subgroups stay converged)
    let m0 = ((wid.z * nwg.x + wid.x) * WG + lid) * 4u;
    let c0 = wid.y * 8u;
    let last = p.m - 1u;
    let o0 = origin(min(m0, last));
    let o1 = origin(min(m0 + 1u, last));
    let o2 = origin(min(m0 + 2u, last));
    let o3 = origin(min(m0 + 3u, last));
    var b = array<vec4<f32>, 8>();
    if (!ACCUMULATE) { b = wrow(p.kh * p.kw * p.k4 * 4u, c0, lid); }       // the first pass adds the bias
    var a0 = mat4x4<f32>(b[0], b[0], b[0], b[0]); var a1 = mat4x4<f32>(b[1], b[1], b[1], b[1]);
    var a2 = mat4x4<f32>(b[2], b[2], b[2], b[2]); var a3 = mat4x4<f32>(b[3], b[3], b[3], b[3]);
    var a4 = mat4x4<f32>(b[4], b[4], b[4], b[4]); var a5 = mat4x4<f32>(b[5], b[5], b[5], b[5]);
    var a6 = mat4x4<f32>(b[6], b[6], b[6], b[6]); var a7 = mat4x4<f32>(b[7], b[7], b[7], b[7]);
    for (var ky = p.ky0; ky < p.ky1; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let t0 = tap(o0, ky, kx);
            let t1 = tap(o1, ky, kx);
            let t2 = tap(o2, ky, kx);
            let t3 = tap(o3, ky, kx);
            var row = ((ky * p.kw + kx) * p.k4 + p.c0) * 4u;
            for (var c = p.c0; c < p.c1; c++) {
                let xt = mat4x4<f32>(load_x(t0, c), load_x(t1, c), load_x(t2, c), load_x(t3, c));
                let wt = wtile(row, c0, lid);
                a0 += wt[0] * xt; a1 += wt[1] * xt; a2 += wt[2] * xt; a3 += wt[3] * xt;
                a4 += wt[4] * xt; a5 += wt[5] * xt; a6 += wt[6] * xt; a7 += wt[7] * xt;
                row += 4u;
            }
        }
    }
    store(m0, c0, a0); store(m0, c0 + 1u, a1); store(m0, c0 + 2u, a2); store(m0, c0 + 3u, a3);
    store(m0, c0 + 4u, a4); store(m0, c0 + 5u, a5); store(m0, c0 + 6u, a6); store(m0, c0 + 7u, a7);
}
