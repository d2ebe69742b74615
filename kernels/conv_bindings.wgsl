// The bindings of the convolution kernels (conv2d_main.wgsl, conv2d_tiled.wgsl, depthwise.wgsl,
// depthwise_tiled.wgsl): input x and packed filter w as vec4s, the epilogue's operands
// (conv_epilogue.wgsl), output y and the uniform block p (its type, Params, declared by the includer).
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ep_bias: array<f32>;
@group(0) @binding(3) var<storage, read> ep_scale: array<f32>;
@group(0) @binding(4) var<storage, read> ep_alpha: array<f32>;
@group(0) @binding(5) var<storage, read> ep_residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(7) var<uniform> p: Params;
