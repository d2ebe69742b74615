// The uniform block of the implicit-matmul convolutions (conv2d_main.wgsl,
// conv2d_texture_main.wgsl, conv2d_uniform.wgsl; ops/conv.py _launch_conv fills it).
struct Params {
    m: u32, n4: u32, k4: u32, alpha: f32,        // output pixels, output / input channel vec4s, activation slope
    h: u32, w: u32, oh: u32, ow: u32,            // spatial sizes of x and y
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_t: i32, pad_l: i32,
    ky0: u32, ky1: u32, c0: u32, c1: u32,        // this pass's filter rows and input channel blocks
    hi: f32,                                     // activation cap (PWL)
    {{FILTER_FIELD}}                             // conv2d_uniform.wgsl's filter (ops/conv_uniform.py), else empty
}
