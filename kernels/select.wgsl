// out[i] = cond ? t : e, broadcasting all three (rank <= 8). Template: T (value type).
#include <common.wgsl>

struct Params {
    n: u32, rank: u32, pad0: u32, pad1: u32,
    shape_lo: vec4<u32>, shape_hi: vec4<u32>,
    c_lo: vec4<u32>, c_hi: vec4<u32>,
    t_lo: vec4<u32>, t_hi: vec4<u32>,
    e_lo: vec4<u32>, e_hi: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> cond: array<u32>;
@group(0) @binding(1) var<storage, read> then_v: array<{{T}}>;
@group(0) @binding(2) var<storage, read> else_v: array<{{T}}>;
@group(0) @binding(3) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid, 64u);
    if (i >= p.n) { return; }
    var rem = i;
    var oc = 0u;
    var ot = 0u;
    var oe = 0u;
    for (var d = 0u; d < 8u; d++) {
        if (d >= p.rank) { break; }
        let k = p.rank - 1u - d;
        let size = at8(p.shape_lo, p.shape_hi, k);
        let c = rem % size;
        rem = rem / size;
        oc += c * at8(p.c_lo, p.c_hi, k);
        ot += c * at8(p.t_lo, p.t_hi, k);
        oe += c * at8(p.e_lo, p.e_hi, k);
    }
    dst[i] = select(else_v[oe], then_v[ot], cond[oc] != 0u);
}
