// Convolution, any adapter: see conv2d_main.wgsl.
#include <conv_wtile.wgsl>
#include <conv2d_main.wgsl>
