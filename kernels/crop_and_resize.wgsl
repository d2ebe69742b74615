// CropAndResize (TensorFlow's CPU kernel, in f32): output [box, y, x, c] samples image
// [box_ind[box], in_y, in_x, c] where in_y = y1 * (H - 1) + y * (y2 - y1) * (H - 1) / (crop_h - 1)
// (the box centre when crop_h == 1), likewise in_x; a sample outside [0, H - 1] x [0, W - 1] is
// `extrapolation`. Override NEAREST: round to the nearest pixel (half away from zero) instead of
// bilinear interpolation. A box index outside [0, batch) also gives `extrapolation`.
// Template: T, the image element type (f32 or i32: a uint8 image lives as i32).
#include <common.wgsl>

override NEAREST: bool = false;

struct Params {
    n: u32, batch: u32, height: u32, width: u32,
    channels: u32, crop_h: u32, crop_w: u32, extrapolation: f32,
    opaque: u32,    // opaque is always 0 (see rounded())
}

@group(0) @binding(0) var<storage, read> image: array<{{T}}>;
@group(0) @binding(1) var<storage, read> boxes: array<f32>;
@group(0) @binding(2) var<storage, read> box_ind: array<i32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn px(b: u32, y: u32, x: u32, c: u32) -> f32 {
    return f32(image[((b * p.height + y) * p.width + x) * p.channels + c]);
}

// A product rounded to f32 before it is added: GPU compilers may contract a*b+c into an FMA,
// which moves sample points that sit exactly on a pixel's half (nearest mode picks the other
// pixel there, seen on an NVIDIA H200). A select on a uniform the compiler cannot see through
// keeps the product a separate value, as TF's CPU kernel computes it.
fn rounded(x: f32) -> f32 {
    return select(x, 0.0, p.opaque != 0u);
}

fn coord(lo: f32, hi: f32, i: u32, crop: u32, size: u32) -> f32 {
    let extent = f32(size - 1u);
    if (crop > 1u) {
        let scale = (hi - lo) * extent / f32(crop - 1u);
        return rounded(lo * extent) + rounded(f32(i) * scale);
    }
    return 0.5 * (lo + hi) * extent;
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let o = flat_id(wid, nwg, lid);
    if (o >= p.n) { return; }
    let c = o % p.channels;
    var q = o / p.channels;
    let x = q % p.crop_w;
    q = q / p.crop_w;
    let y = q % p.crop_h;
    let box = q / p.crop_h;
    let bi = box_ind[box];
    let in_y = coord(boxes[box * 4u], boxes[box * 4u + 2u], y, p.crop_h, p.height);
    let in_x = coord(boxes[box * 4u + 1u], boxes[box * 4u + 3u], x, p.crop_w, p.width);
    if (bi < 0 || u32(bi) >= p.batch || in_y < 0.0 || in_y > f32(p.height - 1u)
        || in_x < 0.0 || in_x > f32(p.width - 1u)) {
        dst[o] = p.extrapolation;
        return;
    }
    let b = u32(bi);
    if (NEAREST) {
        // round half away from zero (std::round); coordinates here are >= 0
        dst[o] = px(b, u32(floor(in_y + 0.5)), u32(floor(in_x + 0.5)), c);
        return;
    }
    let top = u32(floor(in_y));
    let bottom = u32(ceil(in_y));
    let left = u32(floor(in_x));
    let right = u32(ceil(in_x));
    let y_lerp = in_y - floor(in_y);
    let x_lerp = in_x - floor(in_x);
    let tl = px(b, top, left, c);
    let tr = px(b, top, right, c);
    let bl = px(b, bottom, left, c);
    let br = px(b, bottom, right, c);
    let t = tl + (tr - tl) * x_lerp;
    let bo = bl + (br - bl) * x_lerp;
    dst[o] = t + (bo - t) * y_lerp;
}
