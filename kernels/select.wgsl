// out[i] = cond ? t : e, broadcasting all three over the output's dims (rank 1..8; the lowering
// drops size-1 dims and merges dims every operand crosses contiguously). Template: T (value type).
#include <common.wgsl>

// One output dim: a uniform array of structs read with a dynamic index and static field names
// (dynamic vec4 component indexing made the copy kernel up to 2x slower on an H100).
struct Dim { size: u32, c: u32, t: u32, e: u32 }       // extent, each operand's stride (0: broadcast)

struct Params {
    n: u32, rank: u32,
    @align(16) dims: array<Dim, 8>,                     // a uniform array starts on a 16-byte boundary
}

@group(0) @binding(0) var<storage, read> cond: array<u32>;
@group(0) @binding(1) var<storage, read> then_v: array<{{T}}>;
@group(0) @binding(2) var<storage, read> else_v: array<{{T}}>;
@group(0) @binding(3) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    var rem = i;
    var oc = 0u;
    var ot = 0u;
    var oe = 0u;
    for (var k = p.rank - 1u; k > 0u; k--) {            // inner dims; the outermost takes the rest
        let dim = p.dims[k];
        let q = rem / dim.size;
        let c = rem - q * dim.size;
        rem = q;
        oc += c * dim.c;
        ot += c * dim.t;
        oe += c * dim.e;
    }
    let outer = p.dims[0];
    oc += rem * outer.c;
    ot += rem * outer.t;
    oe += rem * outer.e;
    dst[i] = select(else_v[oe], then_v[ot], cond[oc] != 0u);
}
