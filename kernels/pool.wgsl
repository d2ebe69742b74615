// MaxPool / AvgPool with the input in a storage buffer: see pool_main.wgsl.
@group(0) @binding(0) var<storage, read> x: array<vec4<{{T}}>>;
fn x_at(i: u32) -> vec4<{{T}}> { return x[i]; }
#include <pool_main.wgsl>
