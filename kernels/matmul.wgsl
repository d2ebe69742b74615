// C[z] = A[z] x B[z] (+ fused epilogue), register-blocked (matmul_blocked.wgsl: the contract,
// split-K, the layout): each invocation loads the B columns it multiplies itself.
const ROWS_X: bool = false;

fn load_b4(i: u32) -> array<vec4<{{T}}>, 4> {    // rows k..k+3 of one vec4 column of B
    return array<vec4<{{T}}>, 4>(mat_b[i], mat_b[i + p.N4], mat_b[i + 2u * p.N4], mat_b[i + 3u * p.N4]);
}

fn b_block(kb: u32, cols: vec4<u32>, lane: u32) -> BBlock {
    return BBlock(load_b4(kb + cols.x), load_b4(kb + cols.y), load_b4(kb + cols.z), load_b4(kb + cols.w));
}

#include <matmul_blocked.wgsl>
