// One output vec4 of the implicit-matmul convolutions (conv2d_main.wgsl,
// conv2d_texture_main.wgsl): pixel m, channel vec4 c of y [p.m, p.n4], nothing past the last
// pixel; added to what y holds in the passes after the first (ACCUMULATE), then the residual and
// the activation of epilogue e (conv_epilogue.wgsl).
fn store_at(m: u32, c: u32, acc: vec4<f32>, e: Epilogue4) {
    if (m >= p.m) { return; }
    let i = m * p.n4 + c;
    var v = acc;
    if (ACCUMULATE) { v += y[i]; }
    y[i] = activate_at(v, e, i);
}
