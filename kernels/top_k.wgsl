// TopKV2 by ranks: element i of a row ranks before element j when x_i > x_j, or x_i == x_j and
// i < j (TensorFlow's order: ties by lower index). An element whose rank r is below k is written
// to values[row, r] / indices[row, r]: every output slot is written exactly once. Values compare
// by their order-preserving u32 keys (sort_key.wgsl: -0.0 equal to +0.0, a total order, so even
// NaNs take distinct ranks).
// The rows are either whole rows (IDS false: an element's index is its position) or the k
// candidates top_k_select.wgsl gathered from long rows (IDS true: `ids` holds their indices).
// Overrides: MODE 0 = one pass (each invocation counts over its whole row);
//            MODE 1 = partial counts over CHUNK-long slices of the row (rows longer than CHUNK:
//                     llvmpipe caps an invocation at 65535 loop iterations), into `partial`;
//            MODE 2 = sum the partial counts, write the outputs.
// Template: T (f32 or i32), KEY (key_f32 or key_i32).
#include <common.wgsl>
#include <sort_key.wgsl>

override MODE: u32 = 0u;
override IDS: bool = false;

struct Params {
    total: u32, n: u32, k: u32, chunk: u32,        // total: invocations; n: row length
    nchunks: u32,
}

@group(0) @binding(0) var<storage, read> x: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> values: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> indices: array<i32>;
@group(0) @binding(3) var<storage, read_write> partial: array<u32>;
@group(0) @binding(4) var<storage, read> ids: array<i32>;
@group(0) @binding(5) var<uniform> p: Params;

fn id_of(e: u32) -> u32 {           // e = row * n + position
    if (IDS) { return u32(ids[e]); }
    return e;                       // positions order like indices within a row
}

fn count(base: u32, i: u32, xi: {{T}}, lo: u32, hi: u32) -> u32 {
    let ki = {{KEY}}(xi);
    let ii = id_of(base + i);
    var r = 0u;
    for (var j = lo; j < hi; j++) {
        let kj = {{KEY}}(x[base + j]);
        if (kj > ki || (kj == ki && id_of(base + j) < ii)) { r++; }
    }
    return r;
}

fn emit(row: u32, i: u32, xi: {{T}}, rank: u32) {
    if (rank < p.k) {
        values[row * p.k + rank] = xi;
        indices[row * p.k + rank] = i32(id_of(row * p.n + i) - select(row * p.n, 0u, IDS));
    }
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.total) { return; }
    if (MODE == 0u) {
        let row = t / p.n;
        let i = t - row * p.n;
        let xi = x[row * p.n + i];
        emit(row, i, xi, count(row * p.n, i, xi, 0u, p.n));
    } else if (MODE == 1u) {            // t = (row * n + i) * nchunks + c
        let e = t / p.nchunks;
        let c = t - e * p.nchunks;
        let row = e / p.n;
        let i = e - row * p.n;
        let lo = c * p.chunk;
        partial[t] = count(row * p.n, i, x[e], lo, min(lo + p.chunk, p.n));
    } else {                            // t = row * n + i
        let row = t / p.n;
        let i = t - row * p.n;
        var rank = 0u;
        for (var c = 0u; c < p.nchunks; c++) { rank += partial[t * p.nchunks + c]; }
        emit(row, i, x[t], rank);
    }
}
