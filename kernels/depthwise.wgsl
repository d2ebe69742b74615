// Depthwise convolution, NHWC, channel multiplier 1 (the host repeats input channels for larger
// multipliers and pads channels to a multiple of 4), then the activation:
//   y[b, oy, ox, c] = bias[c] + sum over (ky, kx) of
//                     x[b, oy*sh + ky*dh - pt, ox*sw + kx*dw - pl, c] * w[ky, kx, c]
// w holds the kh * kw filter rows of c4 vec4, then the bias row (batch-norm scale folded in).
// Each invocation computes 8 neighbouring output pixels of one row x 4 channels (vec4), so a
// filter vec4 is loaded once per 8 outputs (and with ROW3, an input vec4 at most once). A filter
// taller than llvmpipe's loop cap allows runs as passes over rows [ky0, ky1): the first adds the
// bias, the others ACCUMULATE into y, and only the last adds the residual (HAS_RESIDUAL) and
// applies the activation (the host makes it the identity for the others).
#include <common.wgsl>
#include <conv_epilogue.wgsl>

struct Params {
    n: u32, c4: u32, owb: u32, alpha: f32,       // invocations, channel vec4s, 8-pixel blocks per row; slope
    h: u32, w: u32, oh: u32, ow: u32,
    kw: u32, stride_h: u32, stride_w: u32, dil_h: u32,
    dil_w: u32, pad_t: i32, pad_l: i32, ky0: u32,
    ky1: u32, kh: u32, hi: f32,                  // hi: activation cap (PWL)
}

override ACCUMULATE: bool = false;
// 1 / 2: filters 3 wide without dilation at stride 1 / 2, unrolled so that neighbouring outputs
// share their input loads (10 / 17 loads per filter row instead of 24); 0: any filter
override ROW3: u32 = 0u;

#include <conv_bindings.wgsl>

// x at column ix of the input row starting at pixel `row`, zero outside the image
fn tap(row: u32, ix: i32, c: u32) -> vec4<f32> {
    let inside = ix >= 0 && ix < i32(p.w);
    return select(vec4<f32>(0.0), x[(row + u32(max(ix, 0))) * p.c4 + c], inside);
}

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
    let c = i % p.c4;
    let rest = i / p.c4;
    let ox0 = (rest % p.owb) * 8u;
    let row = rest / p.owb;                      // b * oh + oy
    let b = row / p.oh;
    let oy = row % p.oh;
    let sw = i32(p.stride_w);
    var bias = vec4<f32>();
    if (!ACCUMULATE) { bias = w[p.kh * p.kw * p.c4 + c]; }    // the first pass adds the bias
    var a0 = bias; var a1 = bias; var a2 = bias; var a3 = bias;
    var a4 = bias; var a5 = bias; var a6 = bias; var a7 = bias;
    for (var ky = p.ky0; ky < p.ky1; ky++) {
        let iy = i32(oy * p.stride_h + ky * p.dil_h) - p.pad_t;
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        let in_row = (b * p.h + u32(iy)) * p.w;
        if (ROW3 == 1u) {
            let ix = i32(ox0) - p.pad_l;
            let wi = ky * 3u * p.c4 + c;
            let w0 = w[wi]; let w1 = w[wi + p.c4]; let w2 = w[wi + 2u * p.c4];
            let r0 = tap(in_row, ix, c); let r1 = tap(in_row, ix + 1, c); let r2 = tap(in_row, ix + 2, c);
            let r3 = tap(in_row, ix + 3, c); let r4 = tap(in_row, ix + 4, c); let r5 = tap(in_row, ix + 5, c);
            let r6 = tap(in_row, ix + 6, c); let r7 = tap(in_row, ix + 7, c); let r8 = tap(in_row, ix + 8, c);
            let r9 = tap(in_row, ix + 9, c);
            a0 += r0 * w0 + r1 * w1 + r2 * w2; a1 += r1 * w0 + r2 * w1 + r3 * w2;
            a2 += r2 * w0 + r3 * w1 + r4 * w2; a3 += r3 * w0 + r4 * w1 + r5 * w2;
            a4 += r4 * w0 + r5 * w1 + r6 * w2; a5 += r5 * w0 + r6 * w1 + r7 * w2;
            a6 += r6 * w0 + r7 * w1 + r8 * w2; a7 += r7 * w0 + r8 * w1 + r9 * w2;
            continue;
        }
        if (ROW3 == 2u) {
            let ix = i32(ox0 * 2u) - p.pad_l;
            let wi = ky * 3u * p.c4 + c;
            let w0 = w[wi]; let w1 = w[wi + p.c4]; let w2 = w[wi + 2u * p.c4];
            let r0 = tap(in_row, ix, c); let r1 = tap(in_row, ix + 1, c); let r2 = tap(in_row, ix + 2, c);
            let r3 = tap(in_row, ix + 3, c); let r4 = tap(in_row, ix + 4, c); let r5 = tap(in_row, ix + 5, c);
            let r6 = tap(in_row, ix + 6, c); let r7 = tap(in_row, ix + 7, c); let r8 = tap(in_row, ix + 8, c);
            let r9 = tap(in_row, ix + 9, c); let r10 = tap(in_row, ix + 10, c); let r11 = tap(in_row, ix + 11, c);
            let r12 = tap(in_row, ix + 12, c); let r13 = tap(in_row, ix + 13, c); let r14 = tap(in_row, ix + 14, c);
            let r15 = tap(in_row, ix + 15, c); let r16 = tap(in_row, ix + 16, c);
            a0 += r0 * w0 + r1 * w1 + r2 * w2; a1 += r2 * w0 + r3 * w1 + r4 * w2;
            a2 += r4 * w0 + r5 * w1 + r6 * w2; a3 += r6 * w0 + r7 * w1 + r8 * w2;
            a4 += r8 * w0 + r9 * w1 + r10 * w2; a5 += r10 * w0 + r11 * w1 + r12 * w2;
            a6 += r12 * w0 + r13 * w1 + r14 * w2; a7 += r14 * w0 + r15 * w1 + r16 * w2;
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let wv = w[(ky * p.kw + kx) * p.c4 + c];
            let ix = i32(ox0 * p.stride_w + kx * p.dil_w) - p.pad_l;
            a0 += tap(in_row, ix, c) * wv;
            a1 += tap(in_row, ix + sw, c) * wv;
            a2 += tap(in_row, ix + 2 * sw, c) * wv;
            a3 += tap(in_row, ix + 3 * sw, c) * wv;
            a4 += tap(in_row, ix + 4 * sw, c) * wv;
            a5 += tap(in_row, ix + 5 * sw, c) * wv;
            a6 += tap(in_row, ix + 6 * sw, c) * wv;
            a7 += tap(in_row, ix + 7 * sw, c) * wv;
        }
    }
    let e = epilogue4_params(4u * c, p.alpha);
    store(row, ox0, c, a0, e); store(row, ox0 + 1u, c, a1, e); store(row, ox0 + 2u, c, a2, e);
    store(row, ox0 + 3u, c, a3, e); store(row, ox0 + 4u, c, a4, e); store(row, ox0 + 5u, c, a5, e);
    store(row, ox0 + 6u, c, a6, e); store(row, ox0 + 7u, c, a7, e);
}
