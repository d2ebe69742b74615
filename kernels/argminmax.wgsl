// One pass of ArgMax / ArgMin over the middle axis of a [outer, R, inner] view, in S chunks:
// dst_val / dst_idx[o, s, i] = the best value and its index over the chunk. The first pass reads
// the input (index = position); later passes read the partials of the previous one. Ties keep
// the lowest index, as TF. Template: T. Overrides: IS_MIN, FIRST.
#include <common.wgsl>

override IS_MIN: bool = false;
override FIRST: bool = true;

struct Params { n: u32, R: u32, inner: u32, S: u32, chunk: u32 }

@group(0) @binding(0) var<storage, read> src: array<{{T}}>;
@group(0) @binding(1) var<storage, read> src_idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(3) var<storage, read_write> dst_idx: array<i32>;
@group(0) @binding(4) var<uniform> p: Params;

fn index_at(at: u32, r: u32) -> i32 {
    if (FIRST) { return i32(r); }
    return src_idx[at];
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
    var at = (o * p.R + r0) * p.inner + ii;
    var best = src[at];
    var best_idx = index_at(at, r0);
    for (var r = r0 + 1u; r < r1; r++) {
        at += p.inner;
        let x = src[at];
        if (select(x > best, x < best, IS_MIN)) {
            best = x;
            best_idx = index_at(at, r);
        }
    }
    dst[i] = best;
    dst_idx[i] = best_idx;
}
