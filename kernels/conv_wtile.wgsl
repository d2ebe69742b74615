// wrow() / wtile() for conv2d_main.wgsl: each invocation loads its filter values (any adapter).
fn wrow(row: u32, c0: u32, lid: u32) -> array<vec4<f32>, 8> {
    var r: array<vec4<f32>, 8>;
    for (var j = 0u; j < 8u; j++) { r[j] = w[row * p.n4 + min(c0 + j, p.n4 - 1u)]; }
    return r;
}

fn wtile(row: u32, c0: u32, lid: u32) -> array<mat4x4<f32>, 8> {
    var t: array<mat4x4<f32>, 8>;
    for (var j = 0u; j < 8u; j++) {
        let i = row * p.n4 + min(c0 + j, p.n4 - 1u);
        t[j] = mat4x4<f32>(w[i], w[i + p.n4], w[i + 2u * p.n4], w[i + 3u * p.n4]);
    }
    return t;
}
