// The bindings every convolution kernel has after its two operands (bindings 0 and 1, storage
// buffers in conv_bindings.wgsl, textures in conv_texture_bindings.wgsl): the epilogue's operands
// (conv_epilogue.wgsl) and output y. The uniform block p (its type, Params, declared by the
// includer) follows in the bindings file: binding 7, or 8 after the texture kernels' residual.
@group(0) @binding(2) var<storage, read> ep_bias: array<f32>;
@group(0) @binding(3) var<storage, read> ep_scale: array<f32>;
@group(0) @binding(4) var<storage, read> ep_alpha: array<f32>;
@group(0) @binding(5) var<storage, read> ep_residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<vec4<f32>>;
