// out[i] = EXPR(a[ia], b[ib]) with NumPy broadcasting over the output's dims (rank 1..8; the
// lowering drops size-1 dims and merges dims every operand crosses contiguously).
// Template: T_A, T_B, T_OUT, EXPR (uses a, b). Overrides A_MODE / B_MODE, an operand's index:
//   0 = i (the output's layout), 1 = 0 (scalar), 2 = through the per-dim strides,
//   3 = i % inner (varies along the last dim only: a per-channel bias or scale).
#include <common.wgsl>

override A_MODE: u32 = 2u;
override B_MODE: u32 = 2u;

// One output dim: a uniform array of structs read with a dynamic index and static field names
// (dynamic vec4 component indexing made the copy kernel up to 2x slower on an H100).
// @align(16): an array element's stride in a uniform must be a multiple of 16.
struct Dim { @align(16) size: u32, a: u32, b: u32 }     // extent, a's and b's strides (0: broadcast)

struct Params {
    n: u32, rank: u32, inner: u32,                     // inner: the last dim's extent
    @align(16) dims: array<Dim, 8>,                     // @align(16): naga does not derive it from Dim
}

@group(0) @binding(0) var<storage, read> in_a: array<{{T_A}}>;
@group(0) @binding(1) var<storage, read> in_b: array<{{T_B}}>;
@group(0) @binding(2) var<storage, read_write> dst: array<{{T_OUT}}>;
@group(0) @binding(3) var<uniform> p: Params;

fn op(a: {{T_A}}, b: {{T_B}}) -> {{T_OUT}} {
    return {{EXPR}};
}

fn index(mode: u32, i: u32, strided: u32) -> u32 {
    if (mode == 0u) { return i; }
    if (mode == 1u) { return 0u; }
    if (mode == 3u) { return i % p.inner; }
    return strided;
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    var oa = 0u;
    var ob = 0u;
    if (A_MODE == 2u || B_MODE == 2u) {
        var rem = i;
        for (var k = p.rank - 1u; k > 0u; k--) {        // inner dims; the outermost takes the rest
            let dim = p.dims[k];
            let q = rem / dim.size;
            let c = rem - q * dim.size;
            rem = q;
            oa += c * dim.a;
            ob += c * dim.b;
        }
        oa += rem * p.dims[0].a;
        ob += rem * p.dims[0].b;
    }
    dst[i] = op(in_a[index(A_MODE, i, oa)], in_b[index(B_MODE, i, ob)]);
}
