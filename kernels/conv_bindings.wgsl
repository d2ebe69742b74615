// The bindings of the convolution kernels (conv2d_main.wgsl, conv2d_tiled.wgsl, depthwise.wgsl,
// depthwise_tiled.wgsl): input x and packed filter w as vec4s in storage buffers, then
// conv_outputs.wgsl's; x_at / w_at read vec4 i of each (as conv_texture_bindings.wgsl's do).
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
#include <conv_outputs.wgsl>
@group(0) @binding(7) var<uniform> p: Params;

fn x_at(i: u32) -> vec4<f32> { return x[i]; }
fn w_at(i: u32) -> vec4<f32> { return w[i]; }
// the residual of output vec4 i4 (conv_epilogue.wgsl)
fn residual_at(i4: u32) -> vec4<f32> { return residual4(i4); }
