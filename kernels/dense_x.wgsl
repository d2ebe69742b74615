// Input pixels of DENSE_C channels each, not padded to whole vec4s, for kernels with x_at(i)
// (vec4 i of the input: conv_texture_bindings.wgsl): an image's RGB read as it is, without a
// padded copy before the first convolution (conv2d_texture_main.wgsl, conv2d_uniform.wgsl).
// > 0: x holds DENSE_C channels per pixel; a channel vec4 then may span two texels
override DENSE_C: u32 = 0u;

// DENSE_C: channels 4c..4c+3 of `pixel` (zero past the last channel), from float
// pixel * DENSE_C + 4c on: the rest of its texel and the start of the next
fn dense_x(pixel: u32, c: u32) -> vec4<f32> {
    let at = pixel * DENSE_C + 4u * c;
    let v0 = x_at(at >> 2u);
    let v1 = x_at((at >> 2u) + 1u);
    let s = at & 3u;
    let lo = select(v0, vec4<f32>(v0.yzw, v1.x), s == 1u);
    let hi = select(vec4<f32>(v0.zw, v1.xy), vec4<f32>(v0.w, v1.xyz), s == 3u);
    return select(vec4<f32>(0.0), select(lo, hi, s >= 2u), vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(DENSE_C - 4u * c));
}
