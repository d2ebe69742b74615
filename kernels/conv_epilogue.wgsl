// The epilogue of conv2d_main.wgsl and depthwise.wgsl. The host folds bias and batch-norm scale
// into the packed filter, so only the residual (HAS_RESIDUAL, vec4 element i4 of ep_residual:
// the output's padded NHWC layout; read by the bindings file's residual_at) and the activation
// are left here. A speed path, PWL: the
// piecewise-linear activations (none, Relu, Relu6, LeakyRelu with a slope <= 1) share one
// pipeline computing min(max(v, v * p.alpha), p.hi), the slope and the cap in the uniform (one
// compile instead of one per activation: multi-pass convolutions and models mixing them, e.g.
// MobileNet's Relu6 and linear convolutions, reuse it); a NaN stays NaN. The others apply the
// registry's activation (epilogue4, template ACTIVATION; Prelu's slope from ep_alpha).
// Multi-pass convolutions set HAS_RESIDUAL and the activation in the last pass only.
#include <epilogue.wgsl>

override PWL: bool = false;

fn activate(v: vec4<f32>, e: Epilogue4) -> vec4<f32> {
    if (PWL) {
        let r = min(max(v, v * p.alpha), vec4<f32>(p.hi));
        let nan = (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
        return select(r, v, nan);
    }
    return epilogue4(v, e);
}

// activate() of output vec4 element i4, after adding its residual.
fn activate_at(v: vec4<f32>, e: Epilogue4, i4: u32) -> vec4<f32> {
    return activate(v + residual_at(i4), e);
}
