// out[i] = EXPR(a[ia], b[ib]) with NumPy broadcasting (rank <= 8).
// Template: T_A, T_B, T_OUT, EXPR (uses a, b). Overrides: A_MODE / B_MODE:
//   0 = same index as the output, 1 = scalar, 2 = broadcast through strides.
#include <common.wgsl>

override A_MODE: u32 = 2u;
override B_MODE: u32 = 2u;

struct Params {
    n: u32, rank: u32, pad0: u32, pad1: u32,
    shape_lo: vec4<u32>, shape_hi: vec4<u32>,       // output shape
    a_lo: vec4<u32>, a_hi: vec4<u32>,               // a's strides (0 on broadcast dims)
    b_lo: vec4<u32>, b_hi: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> in_a: array<{{T_A}}>;
@group(0) @binding(1) var<storage, read> in_b: array<{{T_B}}>;
@group(0) @binding(2) var<storage, read_write> dst: array<{{T_OUT}}>;
@group(0) @binding(3) var<uniform> p: Params;

fn op(a: {{T_A}}, b: {{T_B}}) -> {{T_OUT}} {
    return {{EXPR}};
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid, 64u);
    if (i >= p.n) { return; }
    var ia = i;
    var ib = i;
    if (A_MODE == 1u) { ia = 0u; }
    if (B_MODE == 1u) { ib = 0u; }
    if (A_MODE == 2u || B_MODE == 2u) {
        var rem = i;
        var oa = 0u;
        var ob = 0u;
        for (var d = 0u; d < 8u; d++) {
            if (d >= p.rank) { break; }
            let k = p.rank - 1u - d;
            let size = at8(p.shape_lo, p.shape_hi, k);
            let c = rem % size;
            rem = rem / size;
            oa += c * at8(p.a_lo, p.a_hi, k);
            ob += c * at8(p.b_lo, p.b_hi, k);
        }
        if (A_MODE == 2u) { ia = oa; }
        if (B_MODE == 2u) { ib = ob; }
    }
    dst[i] = op(in_a[ia], in_b[ib]);
}
