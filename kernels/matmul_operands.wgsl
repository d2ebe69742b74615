// What matmul.wgsl and matmul_tiled.wgsl share: the bindings (A and B packed as vec4s, C, the
// epilogue's operands, the uniform block p of the includer's Params), a batch's matrix offsets
// and the bias of an output vec4 column. Needs T (template) and #include <matmul_finish.wgsl>.
@group(0) @binding(0) var<storage, read> mat_a: array<vec4<{{T}}>>;
@group(0) @binding(1) var<storage, read> mat_b: array<vec4<{{T}}>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<{{T}}>>;
@group(0) @binding(3) var<storage, read> ep_bias: array<f32>;
@group(0) @binding(4) var<storage, read> ep_scale: array<f32>;
@group(0) @binding(5) var<storage, read> ep_alpha: array<f32>;
@group(0) @binding(6) var<storage, read> ep_residual: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

// The vec4 offsets of batch z's A and B matrices: z unravelled over the merged batch shape,
// times each operand's batch strides (0 where it broadcasts).
fn batch_offsets(z: u32) -> vec2<u32> {
    var a_off = 0u;
    var b_off = 0u;
    var rem = z;
    for (var d = 0u; d < 8u; d++) {
        if (d >= p.rank) { break; }
        let k = p.rank - 1u - d;
        let c = rem % at8(p.shape_lo, p.shape_hi, k);
        rem = rem / at8(p.shape_lo, p.shape_hi, k);
        a_off += c * at8(p.a_lo, p.a_hi, k);
        b_off += c * at8(p.b_lo, p.b_hi, k);
    }
    return vec2<u32>(a_off * p.a_mat, b_off * p.b_mat);
}

fn channels(col: u32) -> vec4<u32> {     // output columns of vec4 column col, clamped to N
    return min(vec4<u32>(4u * col) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N - 1u));
}

fn bias4(col: u32) -> vec4<{{T}}> {
    let n = channels(col);
    return vec4<{{T}}>(bias_of(n.x), bias_of(n.y), bias_of(n.z), bias_of(n.w));
}
