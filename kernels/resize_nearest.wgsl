// ResizeNearestNeighbor, NHWC, 4-byte elements copied bit for bit, with TF's CPU index rules:
//   x = (o + 0.5) * scale (half_pixel_centers) or o * scale;
//   i = min(align_corners ? roundf(x) : floor(x), in - 1), roundf rounding halves away from zero.
// `scale` comes from the host, computed in float32 as TF does. Each invocation copies a run of
// up to RUN channels of one output pixel (see copy.wgsl).
#include <common.wgsl>

override RUN: u32 = 1u;

struct Params {
    n: u32, c: u32, in_h: u32, in_w: u32,        // n: invocations (runs)
    out_h: u32, out_w: u32, align_corners: u32, half_pixel: u32,
    scale_y: f32, scale_x: f32, runs: u32,   // runs: runs per pixel
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

fn source_index(o: u32, scale: f32, in_size: u32) -> u32 {
    var x = f32(o) * scale;
    if (p.half_pixel != 0u) { x = (f32(o) + 0.5) * scale; }
    var f = floor(x);
    if (p.align_corners != 0u && x - f >= 0.5) { f += 1.0; }   // x >= 0: roundf without ties-to-even
    return min(u32(f), in_size - 1u);
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.n) { return; }
    let pixel = t / p.runs;
    let x = pixel % p.out_w;
    let y = (pixel / p.out_w) % p.out_h;
    let b = pixel / (p.out_w * p.out_h);
    let src_px = ((b * p.in_h + source_index(y, p.scale_y, p.in_h)) * p.in_w
                + source_index(x, p.scale_x, p.in_w)) * p.c;
    let c0 = (t % p.runs) * RUN;
    for (var r = 0u; r < RUN; r++) {
        let ch = c0 + r;
        if (ch >= p.c) { break; }
        dst[pixel * p.c + ch] = src[src_px + ch];
    }
}
