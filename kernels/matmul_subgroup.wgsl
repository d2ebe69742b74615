// C[z] = A[z] x B[z] (+ fused epilogue) on llvmpipe with subgroups of 8 (matmul_blocked.wgsl:
// the contract, split-K, the layout). The 8 lanes of a subgroup (lid.x, WG_X = 8) own 8 row
// tiles of the same 4 vec4 columns: per K step each lane loads 2 of the 16 B vec4s and
// subgroupBroadcast hands them to the others (llvmpipe loads memory lane by lane; a broadcast is
// a register shuffle). Needs the "subgroup" feature.
const ROWS_X: bool = true;

fn b_block(kb: u32, cols: vec4<u32>, lane: u32) -> BBlock {
    // lane l loads rows l / 4 and 2 + l / 4 of column l % 4
    let i = kb + lane / 4u * p.N4 + cols[lane % 4u];
    let v0 = mat_b[i];
    let v1 = mat_b[i + 2u * p.N4];
    return BBlock(
        array<vec4<{{T}}>, 4>(subgroupBroadcast(v0, 0u), subgroupBroadcast(v0, 4u), subgroupBroadcast(v1, 0u), subgroupBroadcast(v1, 4u)),
        array<vec4<{{T}}>, 4>(subgroupBroadcast(v0, 1u), subgroupBroadcast(v0, 5u), subgroupBroadcast(v1, 1u), subgroupBroadcast(v1, 5u)),
        array<vec4<{{T}}>, 4>(subgroupBroadcast(v0, 2u), subgroupBroadcast(v0, 6u), subgroupBroadcast(v1, 2u), subgroupBroadcast(v1, 6u)),
        array<vec4<{{T}}>, 4>(subgroupBroadcast(v0, 3u), subgroupBroadcast(v0, 7u), subgroupBroadcast(v1, 3u), subgroupBroadcast(v1, 7u)));
}

#include <matmul_blocked.wgsl>
