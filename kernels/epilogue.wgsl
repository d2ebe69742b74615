// Fused epilogue shared by conv / depthwise / matmul kernels (inlined with #include).
// The including kernel declares the bindings `ep_bias`, `ep_scale`, `ep_alpha` (array<f32>,
// read-only; a 4-byte dummy when unused) and passes the activation's slope (its uniform's
// LeakyRelu alpha) to the functions below.
//   v = acc * scale[c] + bias[c], then the activation:
override HAS_BIAS: bool = false;
override HAS_SCALE: bool = false;
// Prelu: the activation (LeakyRelu's expression) takes its slope per channel from ep_alpha.
override PRELU: bool = false;

// The activation of one value: the template value {{ACTIVATION}} is the float32 WGSL expression
// of the element-wise op's registry record, with `x` the pre-activation value and `slope` the
// LeakyRelu / Prelu slope (wgpu_runtime/ops/fused.py activation_wgsl; `x` for none).
fn activation(x: f32, slope: f32) -> f32 {
    return {{ACTIVATION}};
}

// The slope of channel c: Prelu's from ep_alpha, else the uniform's (`leaky_alpha`).
fn slope_of(c: u32, leaky_alpha: f32) -> f32 {
    if (PRELU) { return ep_alpha[c]; }
    return leaky_alpha;
}

fn epilogue(acc: f32, c: u32, leaky_alpha: f32) -> f32 {
    var v = acc;
    if (HAS_SCALE) { v = v * ep_scale[c]; }
    if (HAS_BIAS) { v = v + ep_bias[c]; }
    return activation(v, slope_of(c, leaky_alpha));
}

// The same on 4 consecutive channels c..c+3, for kernels that store vec4: load the channels'
// parameters once with epilogue4_params(c) and apply them to every row with epilogue4().
struct Epilogue4 { scale: vec4<f32>, bias: vec4<f32>, slope: vec4<f32> }

fn epilogue4_params(c: u32, leaky_alpha: f32) -> Epilogue4 {
    var e: Epilogue4;
    if (HAS_SCALE) { e.scale = vec4<f32>(ep_scale[c], ep_scale[c + 1u], ep_scale[c + 2u], ep_scale[c + 3u]); }
    if (HAS_BIAS) { e.bias = vec4<f32>(ep_bias[c], ep_bias[c + 1u], ep_bias[c + 2u], ep_bias[c + 3u]); }
    e.slope = vec4<f32>(leaky_alpha);
    if (PRELU) { e.slope = vec4<f32>(ep_alpha[c], ep_alpha[c + 1u], ep_alpha[c + 2u], ep_alpha[c + 3u]); }
    return e;
}

// The scalar activation on each component.
fn epilogue4(acc: vec4<f32>, e: Epilogue4) -> vec4<f32> {
    var v = acc;
    if (HAS_SCALE) { v = v * e.scale; }
    if (HAS_BIAS) { v = v + e.bias; }
    return vec4<f32>(activation(v.x, e.slope.x), activation(v.y, e.slope.y),
                     activation(v.z, e.slope.z), activation(v.w, e.slope.w));
}
