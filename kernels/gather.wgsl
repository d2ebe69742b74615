// Gather of 4-byte elements by index tuples (GatherV2 with batch_dims, GatherNd):
//   dst[((b * O + o) * I + j) * K + k] =
//       params[b * sb + o * so + sum_{m < M} idx[(b * ib + j) * M + m] * stride_m + k]
// An index outside [0, bound_m) gives 0 (TF raises on the CPU; a kernel cannot).
// Each invocation copies a run of up to RUN elements along k (see copy.wgsl).
#include <common.wgsl>

override RUN: u32 = 1u;

// One index component m (@align(16): an array element's stride in a uniform must be a multiple of 16).
struct Index { @align(16) stride: u32, bound: u32 }

struct Params {
    n: u32, O: u32, I: u32, K: u32,              // n: invocations (runs)
    M: u32, sb: u32, so: u32, ib: u32,
    runs: u32,                                    // runs: runs per row of K
    @align(16) index: array<Index, 8>,            // @align(16): naga does not derive it from Index
}

@group(0) @binding(0) var<storage, read> params: array<u32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.n) { return; }
    let row = t / p.runs;
    let j = row % p.I;
    let o = (row / p.I) % p.O;
    let b = row / (p.I * p.O);
    var src = b * p.sb + o * p.so;
    var ok = true;
    let first = (b * p.ib + j) * p.M;
    for (var m = 0u; m < 8u; m++) {
        if (m >= p.M) { break; }
        let v = idx[first + m];
        let component = p.index[m];
        ok = ok && v >= 0 && u32(v) < component.bound;
        src += u32(v) * component.stride;
    }
    let k0 = (t % p.runs) * RUN;
    for (var r = 0u; r < RUN; r++) {
        let k = k0 + r;
        if (k >= p.K) { break; }
        var v = 0u;
        if (ok) { v = params[src + k]; }
        dst[row * p.K + k] = v;
    }
}
