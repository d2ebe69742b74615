// The fused epilogue of matmuls (f32 only; int matmuls have none), in two parts: the bias enters
// the sum as its first term (bias_of), finish() applies the rest. Adding the bias after the K
// loop instead measured 1.6x slower on llvmpipe: LLVM hoists the bias loads into the loop, where
// the extra live registers spill. Needs T (template) and #include <epilogue.wgsl> first.

// false: no bias, scale or activation -- the sum is the result (int32 sums never pass through f32)
override EPILOGUE: bool = false;

fn bias_of(n: u32) -> {{T}} {
    if (HAS_BIAS && !HAS_SCALE) { return {{T}}(ep_bias[n]); }
    return {{T}}(0);
}

fn finish(v: {{T}}, n: u32, leaky_alpha: f32) -> {{T}} {
    return finish_r(v, n, leaky_alpha, 0.0);
}

// finish() with the residual r (HAS_RESIDUAL) added after scale and bias.
fn finish_r(v: {{T}}, n: u32, leaky_alpha: f32, r: f32) -> {{T}} {
    if (!EPILOGUE) { return v; }
    if (!HAS_SCALE) {       // bias already in v
        return {{T}}(activation(f32(v) + select(0.0, r, HAS_RESIDUAL), slope_of(n, leaky_alpha)));
    }
    return {{T}}(epilogue_r(f32(v), n, leaky_alpha, r));
}
