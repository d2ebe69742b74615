// What matmul.wgsl and matmul_subgroup.wgsl share: the register-blocked product around the
// includer's b_block(kb, cols, lane) (rows 4k..4k+3 of the invocation's 4 vec4 columns of B).
// Each invocation computes TM rows x 4 vec4 columns, reading A as vec4 along K and B as vec4
// along N (no shared memory: llvmpipe is fastest this way). Operands are pre-packed: A [.., M, K4]
// and B [.., 4*K4, N4] vec4s, zero padded; C is [.., M, N4] vec4s (the caller crops columns past
// N). Template: T (f32 | i32), TM. The includer declares ROWS_X: a workgroup's tile rows run along
// x (the 8 lanes of a subgroup then own 8 row tiles of the same columns), else along y.
// Written the way llvmpipe compiles well: the 4 column blocks spelled out with one short loop
// over r each (a nested column loop measured 2x slower: the accumulators leave registers), and
// vec4 stores (scalar stores measured 1.6x slower).
// Split-K: invocation z' = z * splits + s sums k4 in [s * k4_chunk, (s + 1) * k4_chunk) and
// writes partials [z', M, N4] (epilogue off; matmul_splitk.wgsl adds them up). This keeps each
// invocation's loop below llvmpipe's 65535-iteration cap.
#include <common.wgsl>
#include <epilogue.wgsl>
#include <matmul_finish.wgsl>
#include <matmul_operands.wgsl>

const TM: u32 = {{TM}}u;
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

struct Params {
    M: u32, N: u32, K4: u32, N4: u32,
    tiles_m: u32, tiles_n: u32, groups_m: u32, groups_n: u32,
    nz: u32, splits: u32, k4_chunk: u32, alpha: f32,
    rank: u32, a_mat: u32, b_mat: u32,                // merged batch rank; vec4s per A / B matrix
    shape_lo: vec4<u32>, shape_hi: vec4<u32>,          // merged batch shape of the output
    a_lo: vec4<u32>, a_hi: vec4<u32>,                  // A's batch strides in matrices (0: broadcast)
    b_lo: vec4<u32>, b_hi: vec4<u32>,
}

struct BBlock {     // rows k..k+3 of each of the 4 vec4 columns
    c0: array<vec4<{{T}}>, 4>, c1: array<vec4<{{T}}>, 4>, c2: array<vec4<{{T}}>, 4>, c3: array<vec4<{{T}}>, 4>,
}

fn mac(acc: vec4<{{T}}>, a: vec4<{{T}}>, b: array<vec4<{{T}}>, 4>) -> vec4<{{T}}> {
    return acc + a.x * b[0] + a.y * b[1] + a.z * b[2] + a.w * b[3];
}

fn store(row: u32, col: u32, v: vec4<{{T}}>) {
    if (col < p.N4) {
        let n = channels(col);
        let r = residual4(row + col);          // the output's layout (padded to N4 vec4s)
        dst[row + col] = vec4<{{T}}>(finish_r(v.x, n.x, p.alpha, r.x), finish_r(v.y, n.y, p.alpha, r.y),
                                    finish_r(v.z, n.z, p.alpha, r.z), finish_r(v.w, n.w, p.alpha, r.w));
    }
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wid.y * nwg.x + wid.x;               // workgroups folded into 2-D (grid_1d)
    let zz = g / (p.groups_m * p.groups_n);
    let tile_m = (g / p.groups_n) % p.groups_m * select(WG_Y, WG_X, ROWS_X) + select(lid.y, lid.x, ROWS_X);
    let tile_n = g % p.groups_n * select(WG_X, WG_Y, ROWS_X) + select(lid.x, lid.y, ROWS_X);
    // invocations past the edges run with clamped addresses and store nothing
    let valid = zz < p.nz && tile_m < p.tiles_m && tile_n < p.tiles_n;
    let z = min(zz, p.nz - 1u) / p.splits;
    let k_begin = zz % p.splits * p.k4_chunk;
    let k_end = min(p.K4, k_begin + p.k4_chunk);

    let offsets = batch_offsets(z);
    let a_off = offsets.x;
    let b_off = offsets.y;
    // rows / columns past the edge read the last valid one; their results are not stored
    let row0 = tile_m * TM;
    let col0 = tile_n * 4u;
    let cols = vec4<u32>(b_off) + min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N4 - 1u));

    var acc0: array<vec4<{{T}}>, TM>;
    var acc1: array<vec4<{{T}}>, TM>;
    var acc2: array<vec4<{{T}}>, TM>;
    var acc3: array<vec4<{{T}}>, TM>;
    if (HAS_BIAS && !HAS_SCALE) {
        for (var r = 0u; r < TM; r++) { acc0[r] = bias4(col0); }
        for (var r = 0u; r < TM; r++) { acc1[r] = bias4(col0 + 1u); }
        for (var r = 0u; r < TM; r++) { acc2[r] = bias4(col0 + 2u); }
        for (var r = 0u; r < TM; r++) { acc3[r] = bias4(col0 + 3u); }
    }
    for (var k = k_begin; k < k_end; k++) {
        var a: array<vec4<{{T}}>, TM>;
        for (var r = 0u; r < TM; r++) { a[r] = mat_a[a_off + min(row0 + r, p.M - 1u) * p.K4 + k]; }
        let b = b_block(4u * k * p.N4, cols, lid.x);
        for (var r = 0u; r < TM; r++) { acc0[r] = mac(acc0[r], a[r], b.c0); }
        for (var r = 0u; r < TM; r++) { acc1[r] = mac(acc1[r], a[r], b.c1); }
        for (var r = 0u; r < TM; r++) { acc2[r] = mac(acc2[r], a[r], b.c2); }
        for (var r = 0u; r < TM; r++) { acc3[r] = mac(acc3[r], a[r], b.c3); }
    }

    if (!valid) { return; }
    for (var r = 0u; r < TM; r++) {
        let m = row0 + r;
        if (m < p.M) {
            let row = (zz * p.M + m) * p.N4;
            store(row, col0, acc0[r]);
            store(row, col0 + 1u, acc1[r]);
            store(row, col0 + 2u, acc2[r]);
            store(row, col0 + 3u, acc3[r]);
        }
    }
}
