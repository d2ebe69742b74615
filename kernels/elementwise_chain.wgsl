// out[i] = a chain of element-wise steps over up to 7 float32 inputs, with NumPy broadcasting
// (ops/elementwise_chain.py builds it from the registry's expressions). Template:
//   BINDINGS  the inputs `in0`, `in1`, ... (array<f32>, or a texture copy of one, read by its
//             `fn in0_at(e: u32) -> f32`: element e of textures.py's linear layout), then dst,
//             then the uniform p
//   STEPS     one function per step: `fn step3(x: f32) -> f32` (unary) or `(a: f32, b: f32)`
//   LOADS     `let i0 = in0[INDEX];` per input (`in0_at(INDEX)` for a texture copy),
//             INDEX one of (as binary.wgsl's modes): `i` (the output's layout), `0u` (a
//             scalar), `i % p.inner` (varies along the last dim only), `strided(k, i)` (the
//             per-dim strides of input k, 0 along broadcast dims)
//   BODY      `let s0 = step0(i0, i1);` per step; the last one is the result
//   NS        2 * ops/elementwise_chain.py's MAX_INPUTS (vec4s of strides, one layout for every chain)
// Four elements per invocation where every input is the output's layout, a scalar or a last dim
// of whole vec4s (elementwise_chain._quads): then i, p.n and p.inner count vec4s, the loads are
// vec4s (a texel, `array<vec4<f32>>`, a scalar splat), BODY runs each step per component
// (`s0x` ... `s0w`) and dst is `array<vec4<f32>>`.
#include <common.wgsl>
#include <texel.wgsl>

struct Params {
    n: u32, rank: u32, inner: u32,                  // elements; dims (<= 8); the last dim's extent
    @align(16) sizes: array<vec4<u32>, 2>,          // the output's dims (merged), outermost first
    strides: array<vec4<u32>, {{NS}}>,              // input k's stride along dim d: [2k + d / 4][d % 4]
}

{{BINDINGS}}

// The index into input k of output element i, through its strides.
fn strided(k: u32, i: u32) -> u32 {
    var rem = i;
    var off = 0u;
    for (var d = p.rank - 1u; d > 0u; d--) {       // inner dims; the outermost takes the rest
        let size = at8(p.sizes[0], p.sizes[1], d);
        let q = rem / size;
        off += (rem - q * size) * at8(p.strides[2u * k], p.strides[2u * k + 1u], d);
        rem = q;
    }
    return off + rem * at8(p.strides[2u * k], p.strides[2u * k + 1u], 0u);
}

// On the bits: WGSL compilers may assume no NaN in float comparisons.
fn chain_is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

{{STEPS}}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
{{LOADS}}
{{BODY}}
}
