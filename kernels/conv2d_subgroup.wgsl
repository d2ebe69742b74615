// Convolution on llvmpipe (subgroups of 8): see conv2d_main.wgsl.
#include <conv_wtile_subgroup.wgsl>
#include <conv2d_main.wgsl>
