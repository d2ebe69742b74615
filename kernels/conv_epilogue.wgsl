// The epilogue of conv2d_main.wgsl and depthwise.wgsl. The host folds bias and batch-norm scale
// into the packed filter, so only the activation is left here: the piecewise-linear ones (none,
// Relu, Relu6, LeakyRelu with a slope <= 1) share one pipeline, PWL, computing
// min(max(v, v * p.alpha), p.hi) with the slope and the cap in the uniform; the others go
// through epilogue4 (override ACT; Prelu's alpha from ep_alpha).
#include <epilogue.wgsl>

override PWL: bool = false;

fn activate(v: vec4<f32>, e: Epilogue4) -> vec4<f32> {
    if (PWL) { return min(max(v, v * p.alpha), vec4<f32>(p.hi)); }
    return epilogue4(v, e, p.alpha);
}
