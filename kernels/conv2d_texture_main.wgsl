// Convolution as an implicit matmul, NHWC, with both operands in textures (wgpu_runtime/
// textures.py), included by conv2d_texture.wgsl and conv2d_texture_subgroup.wgsl (the "texture"
// variant of ops/tiled.py): what Mesa's llvmpipe runs fastest, as it fetches texels as vector
// gathers but loads storage buffers lane by lane. The same product, passes and epilogue as
// conv2d_main.wgsl: y[m, n] = bias[n] + sum over (tap, k) of x[pixel(m, tap), k] * w[tap, k, n],
// then the residual and the activation. The includer defines
//   fn wblock(row: u32, c0: u32, lane: u32) -> WBlock    filter rows row..row+3 of channel
//                                                        vec4s c0..c0+NV-1 (lane: lid % 8)
//
// x: the input [N*H*W pixels, k4 vec4s]; w: the packed filter [taps * 4*k4 rows, then the bias
// row; n4 vec4s]; both in textures.py's linear layout (vec4 i at texel (i % 4096, i / 4096)).
// Each invocation computes TM output pixels x NV output channel vec4s (template TM; NV 4 or 8);
// every invocation of a workgroup reads the same filter texels (one block of NV channel vec4s
// per workgroup), so the loads that differ per lane are TM input texels per K step. A texel
// fetch costs llvmpipe about the same whether its lanes share the address or not, so what
// counts is fetches per K step: TM for x, 4 * NV for w (conv2d_texture.wgsl) or 4 * NV / 8 when
// the 8 lanes of a subgroup each fetch different filter texels and hand them round by
// subgroupBroadcast (conv2d_texture_subgroup.wgsl). Registers hold the accumulators as NV
// arrays spelled out, each with a short loop over rows (as llvmpipe compiles best).
#include <common.wgsl>
#include <conv_epilogue.wgsl>

#include <conv_params.wgsl>

const TM: u32 = {{TM}}u;
const NV: u32 = {{NV}}u;
override TRANSPOSED: bool = false;
override ACCUMULATE: bool = false;
override WG: u32 = 64u;
// a 1x1 convolution at stride 1 without padding (and the matmuls): output pixel m reads input
// pixel m, no window arithmetic (its divisions are a loop over the lanes on llvmpipe)
override POINTWISE: bool = false;
// the lanes of a workgroup take different channel blocks of the same TM pixels, instead of
// different pixels of one channel block: for a product of a few rows (at most
// tiled.COLUMN_LANES_MAX_M: a classifier or a batch-1 dense layer), where pixel lanes would be
// mostly idle and every lane would run the whole K loop for one row. Each lane fetches its own filter texels (conv2d_texture.wgsl only).
override COLUMN_LANES: bool = false;

#include <conv_texture_bindings.wgsl>
#include <conv_tap.wgsl>
#include <conv_store.wgsl>
#include <dense_x.wgsl>

fn load_x(pixel: i32, c: u32) -> vec4<f32> {
    if (DENSE_C > 0u) { return select(vec4<f32>(0.0), dense_x(u32(max(pixel, 0)), c), pixel >= 0); }
    return select(vec4<f32>(0.0), x_at(u32(max(pixel, 0)) * p.k4 + c), pixel >= 0);
}

fn load_w(row: u32, col: u32) -> vec4<f32> {
    return w_at(row * p.n4 + min(col, p.n4 - 1u));
}

struct WBlock {     // filter rows row..row+3 of the invocation's NV channel vec4s
    c: array<array<vec4<f32>, 4>, 8>,
}

// acc + a.x * b[0] + ... + a.w * b[3], as fused multiply-adds (llvmpipe does not contract a
// multiply and an add written apart: MobileNetV2 224 measured about 2 % faster this way)
fn mac(acc: vec4<f32>, a: vec4<f32>, b: array<vec4<f32>, 4>) -> vec4<f32> {
    return fma(vec4<f32>(a.w), b[3], fma(vec4<f32>(a.z), b[2], fma(vec4<f32>(a.y), b[1], fma(vec4<f32>(a.x), b[0], acc))));
}

// Stores channel vec4 c of the TM pixels from m0.
fn store(m0: u32, c: u32, acc: array<vec4<f32>, TM>) {
    if (c >= p.n4) { return; }
    let e = epilogue4_params(4u * c, p.alpha);
    for (var r = 0u; r < TM; r++) { store_at(m0 + r, c, acc[r], e); }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // pixel rows along x (folded into z past 65535 groups), channel blocks along y; pixels past
    // the end compute clamped garbage and store nothing
    let row_block = wid.z * nwg.x + wid.x;
    let m0 = select((row_block * WG + lid) * TM, row_block * TM, COLUMN_LANES);
    let c0 = select(wid.y * NV, (wid.y * WG + lid) * NV, COLUMN_LANES);
    let last = p.m - 1u;
    var o: array<vec3<i32>, TM>;
    if (!POINTWISE) {       // the TM pixels' windows: one division, then steps along the rows
        let first = min(m0, last);
        var ox = first % p.ow;
        var oy = (first / p.ow) % p.oh;
        var b = first / (p.ow * p.oh);
        for (var r = 0u; r < TM; r++) {
            o[r] = origin_at(b, oy, ox);         // (past the last pixel: windows nothing stores)
            ox += 1u;
            if (ox == p.ow) { ox = 0u; oy += 1u; }
            if (oy == p.oh) { oy = 0u; b += 1u; }
        }
    }
    var acc0: array<vec4<f32>, TM>; var acc1: array<vec4<f32>, TM>;
    var acc2: array<vec4<f32>, TM>; var acc3: array<vec4<f32>, TM>;
    var acc4: array<vec4<f32>, TM>; var acc5: array<vec4<f32>, TM>;
    var acc6: array<vec4<f32>, TM>; var acc7: array<vec4<f32>, TM>;
    if (!ACCUMULATE) {                           // the first pass adds the bias (the last filter row)
        let bias = p.kh * p.kw * p.k4 * 4u;      // (one fetch per channel vec4: fetches are what cost)
        let b0 = load_w(bias, c0); let b1 = load_w(bias, c0 + 1u);
        let b2 = load_w(bias, c0 + 2u); let b3 = load_w(bias, c0 + 3u);
        for (var r = 0u; r < TM; r++) { acc0[r] = b0; acc1[r] = b1; acc2[r] = b2; acc3[r] = b3; }
        if (NV > 4u) {
            let b4 = load_w(bias, c0 + 4u); let b5 = load_w(bias, c0 + 5u);
            let b6 = load_w(bias, c0 + 6u); let b7 = load_w(bias, c0 + 7u);
            for (var r = 0u; r < TM; r++) { acc4[r] = b4; acc5[r] = b5; acc6[r] = b6; acc7[r] = b7; }
        }
    }
    for (var ky = p.ky0; ky < p.ky1; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            var t: array<i32, TM>;
            for (var r = 0u; r < TM; r++) {
                if (POINTWISE) { t[r] = i32(min(m0 + r, last)); } else { t[r] = tap(o[r], ky, kx); }
            }
            var row = ((ky * p.kw + kx) * p.k4 + p.c0) * 4u;
            for (var c = p.c0; c < p.c1; c++) {
                var a: array<vec4<f32>, TM>;
                for (var r = 0u; r < TM; r++) { a[r] = load_x(t[r], c); }
                let b = wblock(row, c0, lid % 8u);
                for (var r = 0u; r < TM; r++) { acc0[r] = mac(acc0[r], a[r], b.c[0]); }
                for (var r = 0u; r < TM; r++) { acc1[r] = mac(acc1[r], a[r], b.c[1]); }
                for (var r = 0u; r < TM; r++) { acc2[r] = mac(acc2[r], a[r], b.c[2]); }
                for (var r = 0u; r < TM; r++) { acc3[r] = mac(acc3[r], a[r], b.c[3]); }
                if (NV > 4u) {
                    for (var r = 0u; r < TM; r++) { acc4[r] = mac(acc4[r], a[r], b.c[4]); }
                    for (var r = 0u; r < TM; r++) { acc5[r] = mac(acc5[r], a[r], b.c[5]); }
                    for (var r = 0u; r < TM; r++) { acc6[r] = mac(acc6[r], a[r], b.c[6]); }
                    for (var r = 0u; r < TM; r++) { acc7[r] = mac(acc7[r], a[r], b.c[7]); }
                }
                row += 4u;
            }
        }
    }
    store(m0, c0, acc0); store(m0, c0 + 1u, acc1); store(m0, c0 + 2u, acc2); store(m0, c0 + 3u, acc3);
    if (NV > 4u) {
        store(m0, c0 + 4u, acc4); store(m0, c0 + 5u, acc5); store(m0, c0 + 6u, acc6); store(m0, c0 + 7u, acc7);
    }
}
