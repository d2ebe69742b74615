// The window geometry of implicit-matmul convolutions (NHWC), for kernels whose uniform `p` has
// the fields h, w, oh, ow, stride_h, stride_w, dil_h, dil_w, pad_t, pad_l and that declare
// `override TRANSPOSED: bool` (Conv2DBackpropInput: gather from the output gradient).
// The same arithmetic as conv2d_main.wgsl's origin() / tap().

// Output pixel m as (first input row of its image, the window's top row, its left column); for
// TRANSPOSED the window's position in the stride-dilated input.
fn origin(m: u32) -> vec3<i32> {
    return origin_at(m / (p.ow * p.oh), (m / p.ow) % p.oh, m % p.ow);
}

// The same for output pixel (oy, ox) of image b.
fn origin_at(b: u32, oy: u32, ox: u32) -> vec3<i32> {
    let bh = i32(b * p.h);
    if (TRANSPOSED) { return vec3<i32>(bh, i32(oy) + p.pad_t, i32(ox) + p.pad_l); }
    return vec3<i32>(bh, i32(oy * p.stride_h) - p.pad_t, i32(ox * p.stride_w) - p.pad_l);
}

// Input pixel index read at filter tap (ky, kx) from origin o, or -1 where that is padding.
fn tap(o: vec3<i32>, ky: u32, kx: u32) -> i32 {
    var iy = o.y + i32(ky * p.dil_h);
    var ix = o.z + i32(kx * p.dil_w);
    if (TRANSPOSED) {
        // y pixel (oy, ox) receives x pixel (iy, ix) where iy * stride + ky * dil - pad == oy
        let ty = o.y - i32(ky * p.dil_h);
        let tx = o.z - i32(kx * p.dil_w);
        let sy = i32(p.stride_h);
        let sx = i32(p.stride_w);
        if (ty < 0 || tx < 0 || ty % sy != 0 || tx % sx != 0) { return -1; }
        iy = ty / sy;
        ix = tx / sx;
    }
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return -1; }
    return (o.x + iy) * i32(p.w) + ix;
}
