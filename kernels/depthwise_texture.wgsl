// Depthwise convolution, operands in textures (the "texture" variant of ops/tiled.py): see
// depthwise_main.wgsl.
#include <conv_texture_bindings.wgsl>
#include <depthwise_main.wgsl>
