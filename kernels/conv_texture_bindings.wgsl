// The bindings of the texture convolution kernels (conv2d_texture_main.wgsl,
// depthwise_texture.wgsl): input x and packed filter w as textures in textures.py's linear
// layout (vec4 i at texel (i % 4096, i / 4096)), then conv_outputs.wgsl's; x_at / w_at read
// vec4 i of each (as conv_bindings.wgsl's do). Read-only storage textures, not sampled ones:
// llvmpipe fetches their texels 1.5-1.9x faster (docs/lavapipe.md, tools/bench_loads.py).
@group(0) @binding(0) var x: texture_storage_2d<rgba32float, read>;
@group(0) @binding(1) var w: texture_storage_2d<rgba32float, read>;
#include <conv_outputs.wgsl>
// the residual as a texture too (a copy of ep_residual: its buffer would be loaded lane by lane,
// 2.5x the time of a whole 1x1 convolution of K = 16 on llvmpipe), else any texture, unread
@group(0) @binding(7) var res: texture_storage_2d<rgba32float, read>;
@group(0) @binding(8) var<uniform> p: Params;

#include <texel.wgsl>

fn x_at(i: u32) -> vec4<f32> { return textureLoad(x, texel(i)); }
fn w_at(i: u32) -> vec4<f32> { return textureLoad(w, texel(i)); }
// the residual of output vec4 i4 (conv_epilogue.wgsl); residual4 (0 without one) keeps
// ep_residual bound
fn residual_at(i4: u32) -> vec4<f32> {
    if (HAS_RESIDUAL) { return textureLoad(res, texel(i4)); }
    return residual4(i4);
}
