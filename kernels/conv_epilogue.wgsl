// The epilogue of conv2d_main.wgsl and depthwise.wgsl. The host folds bias and batch-norm scale
// into the packed filter, so only the activation is left here. A speed path, PWL: the
// piecewise-linear activations (none, Relu, Relu6, LeakyRelu with a slope <= 1) share one
// pipeline computing min(max(v, v * p.alpha), p.hi), the slope and the cap in the uniform (one
// compile instead of one per activation: multi-pass convolutions and models mixing them, e.g.
// MobileNet's Relu6 and linear convolutions, reuse it). The others apply the registry's
// activation (epilogue4, template ACTIVATION; Prelu's slope from ep_alpha).
#include <epilogue.wgsl>

override PWL: bool = false;

fn activate(v: vec4<f32>, e: Epilogue4) -> vec4<f32> {
    if (PWL) { return min(max(v, v * p.alpha), vec4<f32>(p.hi)); }
    return epilogue4(v, e);
}
