// C[z] = A[z] x B[z] (+ fused epilogue, residual included) with workgroup-memory tiles, for GPUs with fast shared
// memory (on llvmpipe matmul.wgsl is faster). A workgroup of (BN/TN) x (BM/TM) invocations
// computes a BM x BN block of C; per step of BK along K it stages the A tile (transposed:
// As[k][m], rows padded by one vec4 against bank conflicts) and the B tile (Bs[k][n]) in
// workgroup memory with coalesced vec4 loads, then each invocation accumulates TM rows x TN
// columns in registers: rows ly*TM.. (contiguous: vec4 reads of As, broadcast across a warp),
// column vec4s lx + j*(BN/TN) (strided: consecutive invocations read consecutive Bs vec4s).
// Operands as matmul.wgsl reads them: A [.., M, K4] and B [.., 4*K4, N4] vec4s, zero padded;
// C [.., M, N4] vec4s. Edge tiles (any M, N4, K4) load zeros and store nothing past the edges.
// Split-K as matmul.wgsl: z' = z * splits + s sums k4 in [s * k4_chunk, (s + 1) * k4_chunk)
// (k4_chunk a multiple of BK / 4) and matmul_splitk.wgsl adds the partials up.
// Template: T (f32 | i32), TM (multiple of 4), TN (multiple of 4), BM, BN, BK (multiple of 4);
// the host only offers tiles whose loads divide evenly among the invocations. TC: the type of
// the tiles, products and accumulators (T; f16 under the float16 precision option, with
// ENABLES `enable f16;`): operands and results stay T in memory, converted as they are staged.
{{ENABLES}}
#include <common.wgsl>
#include <epilogue.wgsl>
#include <matmul_finish.wgsl>
#include <matmul_operands.wgsl>

const TM: u32 = {{TM}}u;
const TN4: u32 = {{TN}}u / 4u;
const BM: u32 = {{BM}}u;
const BN4: u32 = {{BN}}u / 4u;
const BK4: u32 = {{BK}}u / 4u;
const WGX: u32 = BN4 / TN4;            // invocations along N
const WGY: u32 = BM / TM;              // invocations along M
const NT: u32 = WGX * WGY;
const AP: u32 = BM / 4u + 1u;          // As row stride in vec4s (one vec4 of padding)
const LA: u32 = BM * BK4 / NT;         // A vec4 loads per invocation and tile
const LB: u32 = 4u * BK4 * BN4 / NT;   // B vec4 loads per invocation and tile

struct Params {
    M: u32, N: u32, K4: u32, N4: u32,
    groups_m: u32, groups_n: u32, nz: u32, splits: u32,
    k4_chunk: u32, alpha: f32, rank: u32, a_mat: u32,
    b_mat: u32,                                         // vec4s per A / B matrix
    shape_lo: vec4<u32>, shape_hi: vec4<u32>,           // merged batch shape of the output
    a_lo: vec4<u32>, a_hi: vec4<u32>,                   // A's batch strides in matrices (0: broadcast)
    b_lo: vec4<u32>, b_hi: vec4<u32>,
}

var<workgroup> As: array<vec4<{{TC}}>, 4u * BK4 * AP>;
var<workgroup> Bs: array<vec4<{{TC}}>, 4u * BK4 * BN4>;
#include <tile_stage.wgsl>

// K step k0's tiles into ra / rb (tile_stage.wgsl): A's BM rows x BK4 vec4s from row m_base,
// B's 4*BK4 rows x BN4 vec4s from column n_base; zeros past M, N4 and k_end.
fn load_tiles(k0: u32, k_end: u32, li: u32, m_base: u32, n_base: u32, a_off: u32, b_off: u32) {
    for (var s = 0u; s < LA; s++) {
        let e = li + s * NT;
        let m = m_base + e / BK4;
        let k = k0 + e % BK4;
        ra[s] = select(vec4<{{T}}>(), mat_a[a_off + min(m, p.M - 1u) * p.K4 + min(k, p.K4 - 1u)], m < p.M && k < k_end);
    }
    for (var s = 0u; s < LB; s++) {
        let e = li + s * NT;
        let krow = 4u * k0 + e / BN4;
        let col = n_base + e % BN4;
        let ok = krow < 4u * k_end && col < p.N4;
        rb[s] = select(vec4<{{T}}>(), mat_b[b_off + min(krow, 4u * p.K4 - 1u) * p.N4 + min(col, p.N4 - 1u)], ok);
    }
}

@compute @workgroup_size(WGX, WGY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let g = wid.y * nwg.x + wid.x;               // workgroups folded into 2-D (grid_1d)
    let zz = g / (p.groups_m * p.groups_n);
    if (zz >= p.nz) { return; }                  // whole workgroups past the end
    let m_base = (g / p.groups_n) % p.groups_m * BM;
    let n_base = g % p.groups_n * BN4;
    let z = zz / p.splits;
    let k_begin = zz % p.splits * p.k4_chunk;
    let k_end = min(p.K4, k_begin + p.k4_chunk);

    let offsets = batch_offsets(z);
    let a_off = offsets.x;
    let b_off = offsets.y;

    var acc: array<vec4<{{TC}}>, TM * TN4>;
    if (HAS_BIAS && !HAS_SCALE) {
        for (var j = 0u; j < TN4; j++) {
            let b = vec4<{{TC}}>(bias4(n_base + lid.x + j * WGX));
            for (var r = 0u; r < TM; r++) { acc[r * TN4 + j] = b; }
        }
    }
    let row0 = lid.y * TM / 4u;                  // this invocation's first row, in As vec4s
    if (PREFETCH) { load_tiles(k_begin, k_end, li, m_base, n_base, a_off, b_off); }
    for (var k0 = k_begin; k0 < k_end; k0 += BK4) {
        if (!PREFETCH) { load_tiles(k0, k_end, li, m_base, n_base, a_off, b_off); }
        stage_tiles(li);
        workgroupBarrier();
        if (PREFETCH && k0 + BK4 < k_end) { load_tiles(k0 + BK4, k_end, li, m_base, n_base, a_off, b_off); }
#include <tile_multiply.wgsl>
        workgroupBarrier();
    }

    for (var j = 0u; j < TN4; j++) {
        let col = n_base + lid.x + j * WGX;
        if (col < p.N4) {
            let n = channels(col);
            for (var r = 0u; r < TM; r++) {
                let m = m_base + lid.y * TM + r;
                if (m < p.M) {
                    let v = vec4<{{T}}>(acc[r * TN4 + j]);
                    let i = (zz * p.M + m) * p.N4 + col;
                    let res = residual4(i);      // the output's layout (padded to N4 vec4s)
                    dst[i] = vec4<{{T}}>(finish_r(v.x, n.x, p.alpha, res.x), finish_r(v.y, n.y, p.alpha, res.y),
                                        finish_r(v.z, n.z, p.alpha, res.z), finish_r(v.w, n.w, p.alpha, res.w));
                }
            }
        }
    }
}
