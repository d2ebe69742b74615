// Fused epilogue shared by conv / depthwise / matmul kernels (inlined with #include).
// The including kernel declares the bindings `ep_bias`, `ep_scale`, `ep_alpha`, `ep_residual`
// (array<f32>, read-only, in this order: ops/fused.py bind(); a 4-byte dummy when unused), reads
// the residual through one of the `_at` / `_r` functions below (so that the binding is used), and
// passes the activation's slope (its uniform's LeakyRelu alpha) to them.
//   v = acc * scale[c] + bias[c] (+ residual[i]), then the activation:
override HAS_BIAS: bool = false;
override HAS_SCALE: bool = false;
// Prelu: the activation (LeakyRelu's expression) takes its slope per channel from ep_alpha.
override PRELU: bool = false;
// A residual tensor added per output element before the activation (fused_ops [.., Add, act]).
override HAS_RESIDUAL: bool = false;

// On the bits: WGSL compilers may assume no NaN in float comparisons.
fn ep_is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// The activation of one value: the template value {{ACTIVATION}} is the float32 WGSL expression
// of the element-wise op's registry record, with `x` the pre-activation value and `slope` the
// LeakyRelu / Prelu slope (wgpu_runtime/ops/fused.py activation_wgsl; `x` for none). A NaN stays
// NaN, as in TensorFlow (max / min / clamp may drop it on some adapters).
fn activation(x: f32, slope: f32) -> f32 {
    let r = {{ACTIVATION}};
    return select(r, x, ep_is_nan(x));
}

// The slope of channel c: Prelu's from ep_alpha, else the uniform's (`leaky_alpha`).
fn slope_of(c: u32, leaky_alpha: f32) -> f32 {
    if (PRELU) { return ep_alpha[c]; }
    return leaky_alpha;
}

// The residual of output element i (0 without one), and of the 4 elements 4*i4 .. 4*i4+3.
fn residual(i: u32) -> f32 {
    if (HAS_RESIDUAL) { return ep_residual[i]; }
    return 0.0;
}

fn residual4(i4: u32) -> vec4<f32> {
    if (HAS_RESIDUAL) {
        let i = 4u * i4;
        return vec4<f32>(ep_residual[i], ep_residual[i + 1u], ep_residual[i + 2u], ep_residual[i + 3u]);
    }
    return vec4<f32>(0.0);
}

fn epilogue(acc: f32, c: u32, leaky_alpha: f32) -> f32 {
    var v = acc;
    if (HAS_SCALE) { v = v * ep_scale[c]; }
    if (HAS_BIAS) { v = v + ep_bias[c]; }
    return activation(v, slope_of(c, leaky_alpha));
}

// epilogue() with the residual `r` added after scale and bias.
fn epilogue_r(acc: f32, c: u32, leaky_alpha: f32, r: f32) -> f32 {
    var v = acc;
    if (HAS_SCALE) { v = v * ep_scale[c]; }
    if (HAS_BIAS) { v = v + ep_bias[c]; }
    if (HAS_RESIDUAL) { v = v + r; }
    return activation(v, slope_of(c, leaky_alpha));
}

// epilogue() of output element i, whose channel is c.
fn epilogue_at(acc: f32, c: u32, i: u32, leaky_alpha: f32) -> f32 {
    return epilogue_r(acc, c, leaky_alpha, residual(i));
}

// The same on 4 consecutive channels c..c+3, for kernels that store vec4: load the channels'
// parameters once with epilogue4_params(c) and apply them to every row with epilogue4() /
// epilogue4_at() (with the residual of vec4 element i4).
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
fn activation4(v: vec4<f32>, slope: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activation(v.x, slope.x), activation(v.y, slope.y),
                     activation(v.z, slope.z), activation(v.w, slope.w));
}

fn epilogue4(acc: vec4<f32>, e: Epilogue4) -> vec4<f32> {
    var v = acc;
    if (HAS_SCALE) { v = v * e.scale; }
    if (HAS_BIAS) { v = v + e.bias; }
    return activation4(v, e.slope);
}

fn epilogue4_at(acc: vec4<f32>, e: Epilogue4, i4: u32) -> vec4<f32> {
    var v = acc;
    if (HAS_SCALE) { v = v * e.scale; }
    if (HAS_BIAS) { v = v + e.bias; }
    if (HAS_RESIDUAL) { v = v + residual4(i4); }
    return activation4(v, e.slope);
}
