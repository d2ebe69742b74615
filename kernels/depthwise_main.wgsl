// Depthwise convolution, NHWC, channel multiplier 1, included by depthwise.wgsl (operands in
// storage buffers) and depthwise_texture.wgsl (in textures: llvmpipe fetches texels as vector
// gathers, storage buffers lane by lane), which declare the bindings and x_at / w_at
// (conv_bindings.wgsl, conv_texture_bindings.wgsl). Channel multiplier 1 (the host repeats input channels for larger
// multipliers and pads channels to a multiple of 4), then the activation:
//   y[b, oy, ox, c] = bias[c] + sum over (ky, kx) of
//                     x[b, oy*sh + ky*dh - pt, ox*sw + kx*dw - pl, c] * w[ky, kx, c]
// w holds the kh * kw filter rows of c4 vec4, then the bias row (batch-norm scale folded in).
// Each invocation computes 8 neighbouring output pixels of one row x 4 channels (vec4), so a
// filter vec4 is loaded once per 8 outputs (and with ROW3, an input vec4 at most once). A filter
// taller than llvmpipe's loop cap allows runs as passes over rows [ky0, ky1): the first adds the
// bias, the others ACCUMULATE into y, and only the last adds the residual (HAS_RESIDUAL) and
// applies the activation (the host makes it the identity for the others). With PAIRS (3x3 filters
// with ROW3, one pass) an invocation computes 2 output rows x 8 pixels: the input rows the two
// share are fetched once (4 / 5 input rows for 16 outputs instead of 3 for 8), for the texture
// kernel, whose cost is its texel fetches.
#include <common.wgsl>
#include <row_block.wgsl>
#include <conv_epilogue.wgsl>

struct Params {
    n: u32, c4: u32, owb: u32, alpha: f32,       // invocations, channel vec4s, 8-pixel blocks per row; slope
    h: u32, w: u32, oh: u32, ow: u32,
    kw: u32, stride_h: u32, stride_w: u32, dil_h: u32,
    dil_w: u32, pad_t: i32, pad_l: i32, ky0: u32,
    ky1: u32, kh: u32, hi: f32,                  // hi: activation cap (PWL)
    rows: u32,                                   // output rows per image (oh: row blocks per image)
}

override ACCUMULATE: bool = false;
// 1 / 2: filters 3 wide without dilation at stride 1 / 2, unrolled so that neighbouring outputs
// share their input loads (10 / 17 loads per filter row instead of 24); 0: any filter
override ROW3: u32 = 0u;
// two output rows per invocation (3x3 filters with ROW3, in one pass)
override PAIRS: bool = false;


// x at column ix of the input row starting at pixel `row`, zero outside the image
fn tap(row: u32, ix: i32, c: u32) -> vec4<f32> {
    let inside = ix >= 0 && ix < i32(p.w);
    return select(vec4<f32>(0.0), x_at((row + u32(max(ix, 0))) * p.c4 + c), inside);
}

// output row `row` (over the batch: b * rows + oy)
fn store(row: u32, ox: u32, c: u32, acc: vec4<f32>, e: Epilogue4) {
    if (ox < p.ow) {
        let i = (row * p.ow + ox) * p.c4 + c;
        var v = acc;
        if (ACCUMULATE) { v += y[i]; }
        y[i] = activate_at(v, e, i);
    }
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let blk = row_block(i);
    if (PAIRS) { pairs(blk); return; }
    let sw = i32(p.stride_w);
    var bias = vec4<f32>();
    if (!ACCUMULATE) { bias = w_at(p.kh * p.kw * p.c4 + blk.c); }    // the first pass adds the bias
    var a0 = bias; var a1 = bias; var a2 = bias; var a3 = bias;
    var a4 = bias; var a5 = bias; var a6 = bias; var a7 = bias;
    for (var ky = p.ky0; ky < p.ky1; ky++) {
        let iy = i32(blk.oy * p.stride_h + ky * p.dil_h) - p.pad_t;
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        let in_row = (blk.b * p.h + u32(iy)) * p.w;
        if (ROW3 == 1u) {
            let ix = i32(blk.ox0) - p.pad_l;
            let wi = ky * 3u * p.c4 + blk.c;
            let w0 = w_at(wi); let w1 = w_at(wi + p.c4); let w2 = w_at(wi + 2u * p.c4);
            let r0 = tap(in_row, ix, blk.c); let r1 = tap(in_row, ix + 1, blk.c); let r2 = tap(in_row, ix + 2, blk.c);
            let r3 = tap(in_row, ix + 3, blk.c); let r4 = tap(in_row, ix + 4, blk.c); let r5 = tap(in_row, ix + 5, blk.c);
            let r6 = tap(in_row, ix + 6, blk.c); let r7 = tap(in_row, ix + 7, blk.c); let r8 = tap(in_row, ix + 8, blk.c);
            let r9 = tap(in_row, ix + 9, blk.c);
            a0 += r0 * w0 + r1 * w1 + r2 * w2; a1 += r1 * w0 + r2 * w1 + r3 * w2;
            a2 += r2 * w0 + r3 * w1 + r4 * w2; a3 += r3 * w0 + r4 * w1 + r5 * w2;
            a4 += r4 * w0 + r5 * w1 + r6 * w2; a5 += r5 * w0 + r6 * w1 + r7 * w2;
            a6 += r6 * w0 + r7 * w1 + r8 * w2; a7 += r7 * w0 + r8 * w1 + r9 * w2;
            continue;
        }
        if (ROW3 == 2u) {
            let ix = i32(blk.ox0 * 2u) - p.pad_l;
            let wi = ky * 3u * p.c4 + blk.c;
            let w0 = w_at(wi); let w1 = w_at(wi + p.c4); let w2 = w_at(wi + 2u * p.c4);
            let r0 = tap(in_row, ix, blk.c); let r1 = tap(in_row, ix + 1, blk.c); let r2 = tap(in_row, ix + 2, blk.c);
            let r3 = tap(in_row, ix + 3, blk.c); let r4 = tap(in_row, ix + 4, blk.c); let r5 = tap(in_row, ix + 5, blk.c);
            let r6 = tap(in_row, ix + 6, blk.c); let r7 = tap(in_row, ix + 7, blk.c); let r8 = tap(in_row, ix + 8, blk.c);
            let r9 = tap(in_row, ix + 9, blk.c); let r10 = tap(in_row, ix + 10, blk.c); let r11 = tap(in_row, ix + 11, blk.c);
            let r12 = tap(in_row, ix + 12, blk.c); let r13 = tap(in_row, ix + 13, blk.c); let r14 = tap(in_row, ix + 14, blk.c);
            let r15 = tap(in_row, ix + 15, blk.c); let r16 = tap(in_row, ix + 16, blk.c);
            a0 += r0 * w0 + r1 * w1 + r2 * w2; a1 += r2 * w0 + r3 * w1 + r4 * w2;
            a2 += r4 * w0 + r5 * w1 + r6 * w2; a3 += r6 * w0 + r7 * w1 + r8 * w2;
            a4 += r8 * w0 + r9 * w1 + r10 * w2; a5 += r10 * w0 + r11 * w1 + r12 * w2;
            a6 += r12 * w0 + r13 * w1 + r14 * w2; a7 += r14 * w0 + r15 * w1 + r16 * w2;
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let wv = w_at((ky * p.kw + kx) * p.c4 + blk.c);
            let ix = i32(blk.ox0 * p.stride_w + kx * p.dil_w) - p.pad_l;
            a0 += tap(in_row, ix, blk.c) * wv;
            a1 += tap(in_row, ix + sw, blk.c) * wv;
            a2 += tap(in_row, ix + 2 * sw, blk.c) * wv;
            a3 += tap(in_row, ix + 3 * sw, blk.c) * wv;
            a4 += tap(in_row, ix + 4 * sw, blk.c) * wv;
            a5 += tap(in_row, ix + 5 * sw, blk.c) * wv;
            a6 += tap(in_row, ix + 6 * sw, blk.c) * wv;
            a7 += tap(in_row, ix + 7 * sw, blk.c) * wv;
        }
    }
    let e = epilogue4_params(4u * blk.c, p.alpha);
    let row = blk.b * p.rows + blk.oy;
    store(row, blk.ox0, blk.c, a0, e); store(row, blk.ox0 + 1u, blk.c, a1, e); store(row, blk.ox0 + 2u, blk.c, a2, e);
    store(row, blk.ox0 + 3u, blk.c, a3, e); store(row, blk.ox0 + 4u, blk.c, a4, e); store(row, blk.ox0 + 5u, blk.c, a5, e);
    store(row, blk.ox0 + 6u, blk.c, a6, e); store(row, blk.ox0 + 7u, blk.c, a7, e);
}

// The 10 (ROW3 1) or 17 (ROW3 2) input vec4s from column ix of input row iy of image b, zero
// outside the image.
fn input_row(b: u32, iy: i32, ix: i32, c: u32) -> array<vec4<f32>, 17> {
    var t: array<vec4<f32>, 17>;
    if (iy < 0 || iy >= i32(p.h)) { return t; }
    let in_row = (b * p.h + u32(iy)) * p.w;
    for (var j = 0u; j < 7u * ROW3 + 3u; j++) { t[j] = tap(in_row, ix + i32(j), c); }
    return t;
}

// 8 outputs += one input row (t) times one filter row (w0, w1, w2)
fn mac_row(acc: array<vec4<f32>, 8>, t: array<vec4<f32>, 17>, w0: vec4<f32>, w1: vec4<f32>,
           w2: vec4<f32>) -> array<vec4<f32>, 8> {
    var a = acc;
    for (var j = 0u; j < 8u; j++) {
        let k = j * ROW3;
        a[j] = fma(t[k + 2u], w2, fma(t[k + 1u], w1, fma(t[k], w0, a[j])));
    }
    return a;
}

// PAIRS: output rows 2 * blk.oy and the next, 8 pixels from blk.ox0, channel vec4 blk.c. Written
// out, not as loops over rows: llvmpipe keeps accumulators in registers only where every index is
// a constant (a loop over rows and an array of row accumulators measured 1.3x slower).
fn pairs(blk: RowBlock) {
    let c4 = p.c4;
    let wi = blk.c;
    let w00 = w_at(wi); let w01 = w_at(wi + c4); let w02 = w_at(wi + 2u * c4);
    let w10 = w_at(wi + 3u * c4); let w11 = w_at(wi + 4u * c4); let w12 = w_at(wi + 5u * c4);
    let w20 = w_at(wi + 6u * c4); let w21 = w_at(wi + 7u * c4); let w22 = w_at(wi + 8u * c4);
    let bias = w_at(9u * c4 + wi);
    var a: array<vec4<f32>, 8>; var d: array<vec4<f32>, 8>;        // rows oy and oy + 1
    for (var j = 0u; j < 8u; j++) { a[j] = bias; d[j] = bias; }
    let oy = 2u * blk.oy;
    let iy0 = i32(oy * ROW3) - p.pad_t;
    let ix = i32(blk.ox0 * ROW3) - p.pad_l;
    // input row r feeds output row oy through filter row r and row oy + 1 through row r - ROW3
    let t0 = input_row(blk.b, iy0, ix, wi);
    a = mac_row(a, t0, w00, w01, w02);
    let t1 = input_row(blk.b, iy0 + 1, ix, wi);
    a = mac_row(a, t1, w10, w11, w12);
    if (ROW3 == 1u) { d = mac_row(d, t1, w00, w01, w02); }
    let t2 = input_row(blk.b, iy0 + 2, ix, wi);
    a = mac_row(a, t2, w20, w21, w22);
    if (ROW3 == 1u) { d = mac_row(d, t2, w10, w11, w12); } else { d = mac_row(d, t2, w00, w01, w02); }
    let t3 = input_row(blk.b, iy0 + 3, ix, wi);
    if (ROW3 == 1u) { d = mac_row(d, t3, w20, w21, w22); } else { d = mac_row(d, t3, w10, w11, w12); }
    if (ROW3 == 2u) {
        let t4 = input_row(blk.b, iy0 + 4, ix, wi);
        d = mac_row(d, t4, w20, w21, w22);
    }
    let e = epilogue4_params(4u * blk.c, p.alpha);
    let row = blk.b * p.rows + oy;
    for (var j = 0u; j < 8u; j++) { store(row, blk.ox0 + j, blk.c, a[j], e); }
    if (oy + 1u < p.rows) {
        for (var j = 0u; j < 8u; j++) { store(row + 1u, blk.ox0 + j, blk.c, d[j], e); }
    }
}
