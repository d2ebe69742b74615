// Depthwise convolution with the input patch in workgroup memory, for GPUs with fast shared
// memory (on llvmpipe depthwise.wgsl is faster). Same layouts and result as depthwise.wgsl: NHWC,
// channel multiplier 1 (the host repeats channels for larger multipliers, pads to vec4s),
//   y[b, oy, ox, c] = bias[c] + sum over (ky, kx) of x[b, oy*sh + ky*dh - pt, ox*sw + kx*dw - pl, c] * w[ky, kx, c]
// then the residual and the activation (conv_epilogue.wgsl); w holds the kh * kw filter rows of
// c4 vec4, then the bias row. A workgroup of CB x TW x TH/RY invocations computes a TH x TW
// block of output pixels of one image x CB channel vec4s: it first loads the block's input patch
// (PH x PW pixels x CB vec4s, zero outside the image; consecutive invocations read consecutive
// channel vec4s) into workgroup memory, then each invocation sums RY pixels of one column.
// Template: CB, TW, TH, RY, PATCH (= PH * PW * CB vec4s, with PH = (TH-1)*sh + (kh-1)*dh + 1 and
// PW likewise: the host sizes it for the geometry); one pass (the host offers this kernel only
// when the whole filter fits llvmpipe's loop cap).
#include <common.wgsl>
#include <conv_epilogue.wgsl>

const CB: u32 = {{CB}}u;
const TW: u32 = {{TW}}u;
const TH: u32 = {{TH}}u;
const RY: u32 = {{RY}}u;
const PATCH: u32 = {{PATCH}}u;
const NT: u32 = CB * TW * (TH / RY);

struct Params {
    c4: u32, owb: u32, ohb: u32, alpha: f32,     // channel vec4s; output blocks per row / column; slope
    h: u32, w: u32, oh: u32, ow: u32,
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_t: i32, pad_l: i32,
    ph: u32, pw: u32, cgroups: u32, nb: u32,     // the patch's rows and columns; channel groups; batch
    hi: f32,                                     // activation cap (PWL)
}

#include <conv_bindings.wgsl>

var<workgroup> xs: array<vec4<f32>, PATCH>;

@compute @workgroup_size(CB, TW, TH / RY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let g = wid.y * nwg.x + wid.x;               // workgroups folded into 2-D (grid_1d)
    let cg = g % p.cgroups;
    let bx = (g / p.cgroups) % p.owb;
    let rest = g / (p.cgroups * p.owb);
    let by = rest % p.ohb;
    let b = rest / p.ohb;
    if (b >= p.nb) { return; }                   // whole workgroups past the end
    let ox0 = bx * TW;
    let oy0 = by * TH;
    let iy0 = i32(oy0 * p.stride_h) - p.pad_t;
    let ix0 = i32(ox0 * p.stride_w) - p.pad_l;
    let c = cg * CB + lid.x;
    let cc = min(c, p.c4 - 1u);

    let n = p.ph * p.pw * CB;
    for (var e = li; e < n; e += NT) {           // the input patch, channel vec4s fastest
        let k = e % CB;
        let pix = e / CB;
        let iy = iy0 + i32(pix / p.pw);
        let ix = ix0 + i32(pix % p.pw);
        let ch = cg * CB + k;
        var v = vec4<f32>();
        if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w) && ch < p.c4) {
            v = x[((b * p.h + u32(iy)) * p.w + u32(ix)) * p.c4 + ch];
        }
        xs[e] = v;
    }
    workgroupBarrier();

    let bias = w[p.kh * p.kw * p.c4 + cc];
    var acc: array<vec4<f32>, RY>;
    for (var r = 0u; r < RY; r++) { acc[r] = bias; }
    let px = lid.y * p.stride_w;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let wv = w[(ky * p.kw + kx) * p.c4 + cc];
            let col = px + kx * p.dil_w;
            for (var r = 0u; r < RY; r++) {
                let py = (lid.z * RY + r) * p.stride_h + ky * p.dil_h;
                acc[r] += xs[(py * p.pw + col) * CB + lid.x] * wv;
            }
        }
    }

    let ox = ox0 + lid.y;
    if (c < p.c4 && ox < p.ow) {
        let e = epilogue4_params(4u * c, p.alpha);
        for (var r = 0u; r < RY; r++) {
            let oy = oy0 + lid.z * RY + r;
            if (oy < p.oh) {
                let i = ((b * p.oh + oy) * p.ow + ox) * p.c4 + c;
                y[i] = activate_at(acc[r], e, i);
            }
        }
    }
}
