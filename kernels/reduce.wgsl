// One pass of a reduction over the middle axis of a [outer, R, inner] view, in S chunks:
//   dst[o, s, i] = OP over r in [s * chunk, min(R, (s + 1) * chunk)) of f(src[(o * R + r) * inner + i])
// (then divided by `divisor` unless it is 1: Mean). Chunks keep each invocation's loop far below
// llvmpipe's 65535-iteration cap; a longer axis takes more passes over the partials.
// Template: T (f32 | i32 | u32). Overrides: OP (0 sum, 1 prod, 2 max, 3 min), FLOAT (T is f32);
// SQ_DEV: f(x) = (x - center[(o * inner + i) % center_mod])^2 (batch-norm variance), else f(x) = x.
#include <common.wgsl>

override OP: u32 = 0u;
override SQ_DEV: bool = false;
override FLOAT: bool = true;

struct Params { n: u32, R: u32, inner: u32, S: u32, chunk: u32, divisor: u32, center_mod: u32, init: u32 }

@group(0) @binding(0) var<storage, read> src: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(2) var<storage, read> center: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// by its bits: llvmpipe folds x != x to false
fn is_nan(x: {{T}}) -> bool {
    return FLOAT && (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn combine(acc: {{T}}, x: {{T}}) -> {{T}} {
    switch OP {
        case 1u: { return acc * x; }
        case 2u: { return select(select(acc, x, x > acc || is_nan(x)), acc, is_nan(acc)); }  // NaN wins, as TF
        case 3u: { return select(select(acc, x, x < acc || is_nan(x)), acc, is_nan(acc)); }
        default: { return acc + x; }
    }
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ii = i % p.inner;
    let s = i / p.inner % p.S;
    let o = i / p.inner / p.S;
    let r0 = s * p.chunk;
    let r1 = min(p.R, r0 + p.chunk);
    var c = 0.0;
    if (SQ_DEV) { c = center[(o * p.inner + ii) % p.center_mod]; }
    var acc = bitcast<{{T}}>(p.init);
    var at = (o * p.R + r0) * p.inner + ii;
    for (var r = r0; r < r1; r++) {
        var x = src[at];
        if (SQ_DEV) { x = {{T}}((f32(x) - c) * (f32(x) - c)); }
        acc = combine(acc, x);
        at += p.inner;
    }
    if (p.divisor != 1u) { acc = acc / {{T}}(p.divisor); }
    dst[i] = acc;
}
