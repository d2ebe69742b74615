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
    return activation(v, c, leaky_alpha);
}

// The activation alone (for kernels that add the bias themselves).
fn activation(x: f32, c: u32, leaky_alpha: f32) -> f32 {
    var v = x;
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

// The same on 4 consecutive channels c..c+3, for kernels that store vec4: load the channels'
// parameters once with epilogue4_params(c) and apply them to every row with epilogue4().
struct Epilogue4 { scale: vec4<f32>, bias: vec4<f32>, prelu: vec4<f32> }

fn epilogue4_params(c: u32) -> Epilogue4 {
    var e: Epilogue4;
    if (HAS_SCALE) { e.scale = vec4<f32>(ep_scale[c], ep_scale[c + 1u], ep_scale[c + 2u], ep_scale[c + 3u]); }
    if (HAS_BIAS) { e.bias = vec4<f32>(ep_bias[c], ep_bias[c + 1u], ep_bias[c + 2u], ep_bias[c + 3u]); }
    if (ACT == 4u) { e.prelu = vec4<f32>(ep_alpha[c], ep_alpha[c + 1u], ep_alpha[c + 2u], ep_alpha[c + 3u]); }
    return e;
}

fn epilogue4(acc: vec4<f32>, e: Epilogue4, leaky_alpha: f32) -> vec4<f32> {
    var v = acc;
    if (HAS_SCALE) { v = v * e.scale; }
    if (HAS_BIAS) { v = v + e.bias; }
    switch ACT {
        case 1u: { v = max(v, vec4<f32>(0.0)); }
        case 2u: { v = clamp(v, vec4<f32>(0.0), vec4<f32>(6.0)); }
        case 3u: { v = select(v * leaky_alpha, v, v >= vec4<f32>(0.0)); }
        case 4u: { v = select(v * e.prelu, v, v >= vec4<f32>(0.0)); }
        case 5u: { v = select(exp(v) - 1.0, v, v > vec4<f32>(0.0)); }
        case 6u: { v = 1.0 / (1.0 + exp(-v)); }
        case 7u: { v = vec4<f32>(tanh_f32(v.x), tanh_f32(v.y), tanh_f32(v.z), tanh_f32(v.w)); }
        case 8u: { v = 1.0507009873554805 * select(1.6732632423543772 * (exp(v) - 1.0), v, v > vec4<f32>(0.0)); }
        default: {}
    }
    return v;
}
