// MaxPool / AvgPool of float32 with the input in a texture (textures.py's linear layout, a copy
// of its buffer): see pool_main.wgsl.
@group(0) @binding(0) var x: texture_storage_2d<rgba32float, read>;
#include <texel.wgsl>
fn x_at(i: u32) -> vec4<f32> { return textureLoad(x, texel(i)); }
#include <pool_main.wgsl>
