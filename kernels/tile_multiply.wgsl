// The multiply step of the workgroup-tiled kernels (matmul_tiled.wgsl, conv2d_tiled.wgsl),
// included inside their K loop once the tiles As (TM rows of each invocation, AP vec4s per k)
// and Bs (BN4 vec4 columns per k) are in workgroup memory: each invocation adds the products of
// its TM rows and TN4 vec4 columns (lid.x + j * WGX) to acc. Template: TC (the type the tiles,
// products and accumulators hold: T, or f16 under the float16 precision option).
for (var kk = 0u; kk < 4u * BK4; kk++) {
    var a: array<vec4<{{TC}}>, TM / 4u>;
    for (var i = 0u; i < TM / 4u; i++) { a[i] = As[kk * AP + row0 + i]; }
    var b: array<vec4<{{TC}}>, TN4>;
    for (var j = 0u; j < TN4; j++) { b[j] = Bs[kk * BN4 + lid.x + j * WGX]; }
    for (var r = 0u; r < TM; r++) {
        let ar = a[r / 4u][r % 4u];
        for (var j = 0u; j < TN4; j++) { acc[r * TN4 + j] += ar * b[j]; }
    }
}
