// conv2d_texture_main.wgsl where llvmpipe runs subgroups of 8 (ops.conv.use_subgroups): the 8
// lanes fetch 8 different filter texels per gather and hand them round by subgroupBroadcast
// (a register shuffle), 4 * NV / 8 gathers per K step instead of 4 * NV.
fn wblock(row: u32, c0: u32, lane: u32) -> WBlock {
    var b: WBlock;
    if (NV > 4u) {          // lane l fetches rows row..row+3 of vec4 c0 + l
        let v0 = load_w(row, c0 + lane);
        let v1 = load_w(row + 1u, c0 + lane);
        let v2 = load_w(row + 2u, c0 + lane);
        let v3 = load_w(row + 3u, c0 + lane);
        b.c[0] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 0u), subgroupBroadcast(v1, 0u), subgroupBroadcast(v2, 0u), subgroupBroadcast(v3, 0u));
        b.c[1] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 1u), subgroupBroadcast(v1, 1u), subgroupBroadcast(v2, 1u), subgroupBroadcast(v3, 1u));
        b.c[2] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 2u), subgroupBroadcast(v1, 2u), subgroupBroadcast(v2, 2u), subgroupBroadcast(v3, 2u));
        b.c[3] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 3u), subgroupBroadcast(v1, 3u), subgroupBroadcast(v2, 3u), subgroupBroadcast(v3, 3u));
        b.c[4] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 4u), subgroupBroadcast(v1, 4u), subgroupBroadcast(v2, 4u), subgroupBroadcast(v3, 4u));
        b.c[5] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 5u), subgroupBroadcast(v1, 5u), subgroupBroadcast(v2, 5u), subgroupBroadcast(v3, 5u));
        b.c[6] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 6u), subgroupBroadcast(v1, 6u), subgroupBroadcast(v2, 6u), subgroupBroadcast(v3, 6u));
        b.c[7] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 7u), subgroupBroadcast(v1, 7u), subgroupBroadcast(v2, 7u), subgroupBroadcast(v3, 7u));
    } else {                // lane l fetches rows 2 * (l / 4) and the next of vec4 c0 + l % 4
        let r = row + 2u * (lane / 4u);
        let v0 = load_w(r, c0 + lane % 4u);
        let v1 = load_w(r + 1u, c0 + lane % 4u);
        b.c[0] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 0u), subgroupBroadcast(v1, 0u), subgroupBroadcast(v0, 4u), subgroupBroadcast(v1, 4u));
        b.c[1] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 1u), subgroupBroadcast(v1, 1u), subgroupBroadcast(v0, 5u), subgroupBroadcast(v1, 5u));
        b.c[2] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 2u), subgroupBroadcast(v1, 2u), subgroupBroadcast(v0, 6u), subgroupBroadcast(v1, 6u));
        b.c[3] = array<vec4<f32>, 4>(subgroupBroadcast(v0, 3u), subgroupBroadcast(v1, 3u), subgroupBroadcast(v0, 7u), subgroupBroadcast(v1, 7u));
    }
    return b;
}

#include <conv2d_texture_main.wgsl>
