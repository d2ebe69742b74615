// ResizeBilinear, NHWC, float32 output, with TF's CPU interpolation rules:
//   x = (o + 0.5) * scale - 0.5 (half_pixel_centers) or o * scale;
//   lower = max(floor(x), 0), upper = min(ceil(x), in - 1), lerp = x - floor(x);
//   top = tl + (tr - tl) * lerp_x, bottom = bl + (br - bl) * lerp_x, out = top + (bottom - top) * lerp_y.
// `scale` comes from the host, computed in float32 as TF does. Each invocation computes a run of
// up to RUN channels of one output pixel (see copy.wgsl). Template: T_IN (f32 or i32).
#include <common.wgsl>

override RUN: u32 = 1u;

struct Params {
    n: u32, c: u32, in_h: u32, in_w: u32,        // n: invocations (runs)
    out_h: u32, out_w: u32, half_pixel: u32, runs: u32,   // runs: runs per pixel
    scale_y: f32, scale_x: f32,
}

@group(0) @binding(0) var<storage, read> src: array<{{T_IN}}>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

struct Interp { lower: u32, upper: u32, lerp: f32 }

fn interp(o: u32, scale: f32, in_size: u32) -> Interp {
    var x = f32(o) * scale;
    if (p.half_pixel != 0u) { x = (f32(o) + 0.5) * scale - 0.5; }
    let f = floor(x);
    return Interp(u32(max(i32(f), 0)), u32(min(i32(ceil(x)), i32(in_size) - 1)), x - f);
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
    let iy = interp(y, p.scale_y, p.in_h);
    let ix = interp(x, p.scale_x, p.in_w);
    let top = (b * p.in_h + iy.lower) * p.in_w;
    let bottom = (b * p.in_h + iy.upper) * p.in_w;
    let tl = (top + ix.lower) * p.c;
    let tr = (top + ix.upper) * p.c;
    let bl = (bottom + ix.lower) * p.c;
    let br = (bottom + ix.upper) * p.c;
    let c0 = (t % p.runs) * RUN;
    for (var r = 0u; r < RUN; r++) {
        let ch = c0 + r;
        if (ch >= p.c) { break; }
        let t_l = f32(src[tl + ch]);
        let b_l = f32(src[bl + ch]);
        let upper = t_l + (f32(src[tr + ch]) - t_l) * ix.lerp;
        let lower = b_l + (f32(src[br + ch]) - b_l) * ix.lerp;
        dst[pixel * p.c + ch] = upper + (lower - upper) * iy.lerp;
    }
}
