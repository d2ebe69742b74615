// The staging step of the workgroup-tiled kernels (matmul_tiled.wgsl, conv2d_tiled.wgsl), inlined
// after their constants (LA, LB, NT, BK4, AP) and workgroup arrays (As, Bs): the includer's
// load_tiles(k0, ..) reads one K step's A and B tiles into registers (ra: LA vec4s, rb: LB vec4s
// per invocation, zeros past the edges), stage_tiles() stores them in workgroup memory (A
// transposed, As[k][m] with rows padded by one vec4; B as is) before the step's barrier.
// PREFETCH: the includer loads step k0 + BK4's tiles right after the barrier that publishes step
// k0's, so their memory latency overlaps step k0's products (one tile of registers more); without
// it, each step loads then stores. Template: T (the operands' type), TC (the tiles').
override PREFETCH: bool = false;

var<private> ra: array<vec4<{{T}}>, LA>;
var<private> rb: array<vec4<{{T}}>, LB>;

fn stage_tiles(li: u32) {
    for (var s = 0u; s < LA; s++) {              // A: BM rows x BK4 vec4s, stored transposed
        let e = li + s * NT;
        let r = e / BK4;
        let at = 4u * (e % BK4) * AP + r / 4u;
        let v = ra[s];
        As[at][r % 4u] = {{TC}}(v.x);
        As[at + AP][r % 4u] = {{TC}}(v.y);
        As[at + 2u * AP][r % 4u] = {{TC}}(v.z);
        As[at + 3u * AP][r % 4u] = {{TC}}(v.w);
    }
    for (var s = 0u; s < LB; s++) {              // B: 4*BK4 rows x BN4 vec4s
        Bs[li + s * NT] = vec4<{{TC}}>(rb[s]);
    }
}
