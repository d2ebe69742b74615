// MaxPool / AvgPool, NHWC with channels padded to a multiple of 4, included by pool.wgsl (input
// in a storage buffer; template T: f32 or i32 for max) and pool_texture.wgsl (f32 in a texture:
// llvmpipe fetches texels as vector gathers, storage buffers lane by lane), which declare
// binding 0, x, and x_at(i): its vec4 i.
// Each invocation pools 8 neighbouring output pixels of one row x 4 channels (vec4). Padding is
// left out of windows: AvgPool divides by the number of elements inside the image, as TF does.
// A window taller than llvmpipe's loop cap allows runs as passes over rows [ky0, ky1): passes
// after the first ACCUMULATE into y, and AvgPool divides in the FINAL one.
#include <common.wgsl>
#include <row_block.wgsl>

override MODE: u32 = 0u;            // 0 max, 1 average
override ACCUMULATE: bool = false;
override FINAL: bool = true;
override LOWEST_BITS: u32 = 0u;     // max: the bits of the start value (the lowest f32 or i32)
override FLOAT: bool = true;        // T is f32: max skips NaN, as TF's CPU MaxPool

struct Params {
    n: u32, c4: u32, owb: u32, kh: u32,          // invocations, channel vec4s, 8-pixel blocks per row, window rows
    h: u32, w: u32, oh: u32, ow: u32,
    kw: u32, stride_h: u32, stride_w: u32, pad_t: i32,
    pad_l: i32, ky0: u32, ky1: u32,
}

@group(0) @binding(1) var<storage, read_write> y: array<vec4<{{T}}>>;
@group(0) @binding(2) var<uniform> p: Params;

fn pool(acc: vec4<{{T}}>, row: u32, ix: i32, c: u32) -> vec4<{{T}}> {
    if (ix < 0 || ix >= i32(p.w)) { return acc; }
    let v = x_at((row + u32(ix)) * p.c4 + c);
    if (MODE == 0u) { return select(max(acc, v), acc, is_nan4(v) & vec4<bool>(FLOAT)); }
    return acc + v;
}

// On the bits: WGSL compilers may assume no NaN in float comparisons.
fn is_nan4(v: vec4<{{T}}>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

// number of window positions in [start, start + k) inside [0, size)
fn inside(start: i32, k: u32, size: u32) -> u32 {
    return u32(max(min(start + i32(k), i32(size)) - max(start, 0), 0));
}

fn store(row: u32, ox: u32, c: u32, acc: vec4<{{T}}>, rows_in: u32) {
    if (ox >= p.ow) { return; }
    let i = (row * p.ow + ox) * p.c4 + c;
    var v = acc;
    if (ACCUMULATE) {
        if (MODE == 0u) { v = max(v, y[i]); } else { v += y[i]; }
    }
    if (MODE == 1u && FINAL) {
        let cols_in = inside(i32(ox * p.stride_w) - p.pad_l, p.kw, p.w);
        v = v / {{T}}(rows_in * cols_in);
    }
    y[i] = v;
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let blk = row_block(i);
    let sw = i32(p.stride_w);
    var start = vec4<{{T}}>(0);
    if (MODE == 0u) { start = vec4<{{T}}>(bitcast<{{T}}>(LOWEST_BITS)); }
    var a0 = start; var a1 = start; var a2 = start; var a3 = start;
    var a4 = start; var a5 = start; var a6 = start; var a7 = start;
    let y0 = i32(blk.oy * p.stride_h) - p.pad_t;
    for (var ky = p.ky0; ky < p.ky1; ky++) {
        let iy = y0 + i32(ky);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        let in_row = (blk.b * p.h + u32(iy)) * p.w;
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(blk.ox0 * p.stride_w + kx) - p.pad_l;
            a0 = pool(a0, in_row, ix, blk.c);
            a1 = pool(a1, in_row, ix + sw, blk.c);
            a2 = pool(a2, in_row, ix + 2 * sw, blk.c);
            a3 = pool(a3, in_row, ix + 3 * sw, blk.c);
            a4 = pool(a4, in_row, ix + 4 * sw, blk.c);
            a5 = pool(a5, in_row, ix + 5 * sw, blk.c);
            a6 = pool(a6, in_row, ix + 6 * sw, blk.c);
            a7 = pool(a7, in_row, ix + 7 * sw, blk.c);
        }
    }
    let rows_in = inside(y0, p.kh, p.h);
    store(blk.row, blk.ox0, blk.c, a0, rows_in); store(blk.row, blk.ox0 + 1u, blk.c, a1, rows_in); store(blk.row, blk.ox0 + 2u, blk.c, a2, rows_in);
    store(blk.row, blk.ox0 + 3u, blk.c, a3, rows_in); store(blk.row, blk.ox0 + 4u, blk.c, a4, rows_in); store(blk.row, blk.ox0 + 5u, blk.c, a5, rows_in);
    store(blk.row, blk.ox0 + 6u, blk.c, a6, rows_in); store(blk.row, blk.ox0 + 7u, blk.c, a7, rows_in);
}
