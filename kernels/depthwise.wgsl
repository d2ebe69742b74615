// Depthwise convolution, operands in storage buffers (any adapter): see depthwise_main.wgsl.
#include <conv_bindings.wgsl>
#include <depthwise_main.wgsl>
