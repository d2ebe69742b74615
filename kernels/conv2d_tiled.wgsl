// Convolution as an implicit matmul with workgroup-memory tiles (NHWC), for GPUs with fast shared
// memory (on llvmpipe conv2d.wgsl is faster): y[m, n] = bias[n] + sum over kq of
// A[m, kq] . w[4 kq .. 4 kq + 3, n], then the residual and the activation (conv_epilogue.wgsl).
// A is gathered on the fly: row m is output pixel m, vec4 column kq = tap * k4 + c is input
// channel vec4 c at filter tap (ky, kx) = (tap / kw, tap % kw) of its window (zero in the
// padding; POINTWISE: 1x1, stride 1, no padding, so A is x itself). The tiling is
// matmul_tiled.wgsl's: a workgroup of (BN/TN) x (BM/TM) invocations computes BM pixels x BN
// channels, staging per BK step the A tile (transposed, rows padded by a vec4) and the filter
// tile in workgroup memory; each invocation accumulates TM pixels x TN channels in registers.
// Layouts as conv2d_main.wgsl: x [N, H, W, 4*k4], y [m, 4*n4], w [taps * 4*k4 filter rows, then
// the bias row; 4*n4] (batch-norm scale folded in). A reduction longer than llvmpipe's loop cap
// runs as passes over kq in [q0, q1) (multiples of BK / 4): the first adds the bias, the others
// ACCUMULATE into y; the host sets the residual and the activation in the last only. SPLIT
// (split-K, for outputs too small to fill a big GPU): the grid holds `splits` copies of the
// `groups` workgroups; copy s sums kq in [q0 + s * chunk, + chunk) and stores its raw sums (no
// bias, no epilogue) in slice s of y, then a partial-sums buffer [splits, m, 4*n4], which
// conv_splitk.wgsl adds up. Without SPLIT, groups is the grid and chunk = q1 - q0.
// Template: TM, TN, BM, BN, BK (multiples of 4) and the epilogue's ACTIVATION; TC, the type of
// the tiles, products and accumulators (f32; f16 under the float16 precision option, with ENABLES
// `enable f16;`; a multi-pass K sums the passes in f32 in y).
{{ENABLES}}
#include <common.wgsl>
#include <conv_epilogue.wgsl>

const TM: u32 = {{TM}}u;
const TN4: u32 = {{TN}}u / 4u;
const BM: u32 = {{BM}}u;
const BN4: u32 = {{BN}}u / 4u;
const BK4: u32 = {{BK}}u / 4u;
const WGX: u32 = BN4 / TN4;            // invocations along the output channels
const WGY: u32 = BM / TM;              // invocations along the output pixels
const NT: u32 = WGX * WGY;
const AP: u32 = BM / 4u + 1u;          // As row stride in vec4s (one vec4 of padding)
const LA: u32 = BM * BK4 / NT;         // A vec4 loads per invocation and tile
const LB: u32 = 4u * BK4 * BN4 / NT;   // filter vec4 loads per invocation and tile

struct Params {
    m: u32, n4: u32, k4: u32, alpha: f32,        // output pixels, output / input channel vec4s, activation slope
    h: u32, w: u32, oh: u32, ow: u32,            // spatial sizes of x and y
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_t: i32, pad_l: i32,
    q0: u32, q1: u32, groups_n: u32,             // this pass's K vec4s; workgroups along n
    groups: u32, chunk: u32,                     // workgroups per split; K vec4s per split
    hi: f32,                                     // activation cap (PWL)
}

override TRANSPOSED: bool = false;
override ACCUMULATE: bool = false;
override POINTWISE: bool = false;
override SPLIT: bool = false;

#include <conv_bindings.wgsl>
#include <conv_tap.wgsl>

var<workgroup> As: array<vec4<{{TC}}>, 4u * BK4 * AP>;
var<workgroup> Bs: array<vec4<{{TC}}>, 4u * BK4 * BN4>;
var<private> org: array<vec3<i32>, LA>;        // the windows' origins of the A rows an invocation loads
#include <tile_stage.wgsl>

// K step k0's tiles into ra / rb (tile_stage.wgsl): the A rows' gathered input vec4s (pixel
// m_base + row, vec4 column kq: a tap and a channel vec4) and the filter's 4*BK4 rows x BN4
// vec4s from column n_base; zeros past m, n4, q_end and in the padding.
fn load_tiles(k0: u32, q_end: u32, li: u32, m_base: u32, n_base: u32) {
    for (var s = 0u; s < LA; s++) {
        let e = li + s * NT;
        let r = e / BK4;
        let q = k0 + e % BK4;
        var v = vec4<f32>();
        if (m_base + r < p.m && q < q_end) {
            if (POINTWISE) {
                v = x[(m_base + r) * p.k4 + q];
            } else {
                let t = q / p.k4;
                let pixel = tap(org[s], t / p.kw, t % p.kw);
                if (pixel >= 0) { v = x[u32(pixel) * p.k4 + q % p.k4]; }
            }
        }
        ra[s] = v;
    }
    for (var s = 0u; s < LB; s++) {
        let e = li + s * NT;
        let krow = 4u * k0 + e / BN4;
        let col = n_base + e % BN4;
        var v = vec4<f32>();
        if (krow < 4u * q_end && col < p.n4) { v = w[krow * p.n4 + col]; }
        rb[s] = v;
    }
}

@compute @workgroup_size(WGX, WGY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let g = wid.y * nwg.x + wid.x;               // workgroups folded into 2-D (grid_1d)
    let s = g / p.groups;                        // the split (0 without SPLIT)
    let m_base = g % p.groups / p.groups_n * BM;
    let n_base = g % p.groups_n * BN4;
    let q_begin = p.q0 + s * p.chunk;
    let q_end = min(p.q1, q_begin + p.chunk);
    if (m_base >= p.m || q_begin >= p.q1) { return; }   // whole workgroups past the end
    let taps = p.kh * p.kw;
    let bias_row = 4u * taps * p.k4;

    // the A rows this invocation loads (the same in every tile): their windows' origins
    for (var s = 0u; s < LA; s++) { org[s] = origin(min(m_base + (li + s * NT) / BK4, p.m - 1u)); }

    var acc: array<vec4<{{TC}}>, TM * TN4>;
    if (!ACCUMULATE && !SPLIT) {                 // the first pass adds the bias
        for (var j = 0u; j < TN4; j++) {
            let b = w[bias_row * p.n4 + min(n_base + lid.x + j * WGX, p.n4 - 1u)];
            for (var r = 0u; r < TM; r++) { acc[r * TN4 + j] = vec4<{{TC}}>(b); }
        }
    }
    let row0 = lid.y * TM / 4u;                  // this invocation's first row, in As vec4s
    if (PREFETCH) { load_tiles(q_begin, q_end, li, m_base, n_base); }
    for (var k0 = q_begin; k0 < q_end; k0 += BK4) {
        if (!PREFETCH) { load_tiles(k0, q_end, li, m_base, n_base); }
        stage_tiles(li);
        workgroupBarrier();
        if (PREFETCH && k0 + BK4 < q_end) { load_tiles(k0 + BK4, q_end, li, m_base, n_base); }
#include <tile_multiply.wgsl>
        workgroupBarrier();
    }

    for (var j = 0u; j < TN4; j++) {
        let c = n_base + lid.x + j * WGX;
        if (c < p.n4) {
            let e = epilogue4_params(4u * c, p.alpha);
            for (var r = 0u; r < TM; r++) {
                let m = m_base + lid.y * TM + r;
                if (m < p.m) {
                    let i = m * p.n4 + c;
                    var v = vec4<f32>(acc[r * TN4 + j]);
                    if (SPLIT) {
                        y[s * p.m * p.n4 + i] = v;
                    } else {
                        if (ACCUMULATE) { v += y[i]; }
                        y[i] = activate_at(v, e, i);
                    }
                }
            }
        }
    }
}
