// wrow() / wtile() for conv2d_main.wgsl on llvmpipe: the 8 invocations of a subgroup (8
// consecutive local indices: one 256-bit SIMD batch) need the same filter values, so each loads
// one column block and subgroupBroadcast hands the others theirs: llvmpipe loads memory lane by
// lane, and a broadcast is a register shuffle. Needs the "subgroup" feature, WG a multiple of 8.
fn bcast(v: vec4<f32>) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                               subgroupBroadcast(v, 3u), subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u),
                               subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}

fn wrow(row: u32, c0: u32, lid: u32) -> array<vec4<f32>, 8> {
    return bcast(w[row * p.n4 + min(c0 + lid % 8u, p.n4 - 1u)]);
}

fn wtile(row: u32, c0: u32, lid: u32) -> array<mat4x4<f32>, 8> {
    let b0 = wrow(row, c0, lid);
    let b1 = wrow(row + 1u, c0, lid);
    let b2 = wrow(row + 2u, c0, lid);
    let b3 = wrow(row + 3u, c0, lid);
    return array<mat4x4<f32>, 8>(
        mat4x4<f32>(b0[0], b1[0], b2[0], b3[0]), mat4x4<f32>(b0[1], b1[1], b2[1], b3[1]),
        mat4x4<f32>(b0[2], b1[2], b2[2], b3[2]), mat4x4<f32>(b0[3], b1[3], b2[3], b3[3]),
        mat4x4<f32>(b0[4], b1[4], b2[4], b3[4]), mat4x4<f32>(b0[5], b1[5], b2[5], b3[5]),
        mat4x4<f32>(b0[6], b1[6], b2[6], b3[6]), mat4x4<f32>(b0[7], b1[7], b2[7], b3[7]));
}
