// Fused epilogue shared by conv / depthwise / matmul kernels (inlined with #include).
// The including kernel declares the bindings `ep_bias`, `ep_scale`, `ep_alpha` (array<f32>,
// read-only; a 4-byte dummy when unused) and a uniform field `p.alpha` (LeakyRelu slope).
//   v = acc * scale[c] + bias[c], then the activation, chosen by override constants:
override HAS_BIAS: bool = false;
override HAS_SCALE: bool = false;
// 0 none, 1 Relu, 2 Relu6, 3 LeakyRelu, 4 Prelu, 5 Elu, 6 Sigmoid, 7 Tanh, 8 Selu
override ACT: u32 = 0u;

fn epilogue(acc: f32, c: u32, leaky_alpha: f32) -> f32 {
    var v = acc;
    if (HAS_SCALE) { v = v * ep_scale[c]; }
    if (HAS_BIAS) { v = v + ep_bias[c]; }
    switch ACT {
        case 1u: { v = max(v, 0.0); }
        case 2u: { v = clamp(v, 0.0, 6.0); }
        case 3u: { v = select(v * leaky_alpha, v, v >= 0.0); }
        case 4u: { v = select(v * ep_alpha[c], v, v >= 0.0); }
        case 5u: { v = select(exp(v) - 1.0, v, v > 0.0); }
        case 6u: { v = 1.0 / (1.0 + exp(-v)); }
        case 7u: { v = tanh_f32(v); }
        case 8u: { v = 1.0507009873554805 * select(1.6732632423543772 * (exp(v) - 1.0), v, v > 0.0); }
        default: {}
    }
    return v;
}
