// Strided copy of 4-byte elements (any dtype: the bits move unchanged). For every index c of an
// iteration shape (rank 1..8):
//   dst[dst_base + sum_k c_k * dst_stride_k] = src[src_base + sum_k s_k * src_stride_k]
// where s_k, the source coordinate along dim k, depends on the override MODE:
//   0 AFFINE     s = c (strides carry steps and signs: transpose, slices, concat, split, fill)
//   1 PAD        s = c - lo; outside [0, ext) the element is `fill`
//   2 TILE       s = c % ext
//   3 REFLECT    s = c - lo, mirrored at the edges without repeating the edge (ext > lo)
//   4 SYMMETRIC  s = c - lo, mirrored at the edges repeating the edge (ext >= lo)
// Each invocation copies a run of up to RUN elements along the innermost dim: the divisions that
// locate the run (slow on CPU adapters: integer division does not vectorize) are paid once per run.
#include <common.wgsl>

override MODE: u32 = 0u;
override RUN: u32 = 1u;

// One iteration dim: a uniform array of structs read with a dynamic index and static field names.
// (Indexing vec4 components dynamically, as at8() does, made this kernel up to 2x slower on an H100.)
// @align(16): an array element's stride in a uniform must be a multiple of 16.
struct Dim {
    @align(16) size: u32, dst: u32, src: i32, lo: i32,   // extent, strides, lo (PAD/REFLECT/SYMMETRIC)
    ext: i32,                                           // source extent (PAD/TILE/REFLECT/SYMMETRIC)
}

struct Params {
    n: u32, rank: u32, src_base: i32, dst_base: u32,    // n: invocations (runs)
    fill: u32, runs: u32,                               // runs: runs per innermost row
    @align(16) dims: array<Dim, 8>,                     // @align(16): naga does not derive it from Dim
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

// Source coordinate for iteration coordinate c along a dim with offset lo and source extent ext;
// `inside` becomes false where it is padding.
fn source(c: u32, lo: i32, ext: i32, inside: ptr<function, bool>) -> i32 {
    if (MODE == 0u) { return i32(c); }
    if (MODE == 2u) { return i32(c % u32(ext)); }
    var s = i32(c) - lo;
    if (MODE == 1u) { *inside = *inside && s >= 0 && s < ext; }
    if (MODE == 3u) {
        if (s < 0) { s = -s; }
        if (s >= ext) { s = 2 * ext - 2 - s; }
    }
    if (MODE == 4u) {
        if (s < 0) { s = -s - 1; }
        if (s >= ext) { s = 2 * ext - 1 - s; }
    }
    return s;
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.n) { return; }
    let last = p.rank - 1u;
    var rem = t / p.runs;
    var so = p.src_base;
    var d_off = p.dst_base;
    var inside = true;
    for (var d = 1u; d < 8u; d++) {                     // the outer dims, innermost first
        if (d >= p.rank) { break; }
        let dim = p.dims[last - d];
        let c = rem % dim.size;
        rem = rem / dim.size;
        d_off += c * dim.dst;
        so += source(c, dim.lo, dim.ext, &inside) * dim.src;
    }
    let dim = p.dims[last];
    let c0 = (t % p.runs) * RUN;
    for (var j = 0u; j < RUN; j++) {
        let c = c0 + j;
        if (c >= dim.size) { break; }
        var ok = inside;
        let s = source(c, dim.lo, dim.ext, &ok);
        var v = p.fill;
        if (ok) { v = src[u32(so + s * dim.src)]; }
        dst[d_off + c * dim.dst] = v;
    }
}
