// Row statistics of Softmax / LogSoftmax over the last axis, one pass of [rows, D] -> [rows, S]
// chunks: m = max, l = sum of exp(x - m). The first pass reads the logits (each an (m, l) of
// (x, 1)); later passes merge partials: m = max m_j, l = sum l_j * exp(m_j - m). Chunks keep
// each invocation's loops far below llvmpipe's 65535-iteration cap. Override: FIRST.
#include <common.wgsl>

override FIRST: bool = true;

struct Params { n: u32, D: u32, S: u32, chunk: u32 }

@group(0) @binding(0) var<storage, read> src_m: array<f32>;
@group(0) @binding(1) var<storage, read> src_l: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst_m: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst_l: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let row = i / p.S;
    let r0 = i % p.S * p.chunk;
    let r1 = min(p.D, r0 + p.chunk);
    let base = row * p.D;
    var m = src_m[base + r0];
    for (var r = r0 + 1u; r < r1; r++) { m = max(m, src_m[base + r]); }
    var l = 0.0;
    for (var r = r0; r < r1; r++) {
        var w = 1.0;
        if (!FIRST) { w = src_l[base + r]; }
        l += w * exp(src_m[base + r] - m);
    }
    dst_m[i] = m;
    dst_l[i] = l;
}
