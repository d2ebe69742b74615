// conv2d_texture_main.wgsl on any adapter: every invocation fetches its filter texels.
fn wblock(row: u32, c0: u32, lane: u32) -> WBlock {
    var b: WBlock;
    for (var j = 0u; j < NV; j++) {
        b.c[j] = array<vec4<f32>, 4>(load_w(row, c0 + j), load_w(row + 1u, c0 + j), load_w(row + 2u, c0 + j),
                                     load_w(row + 3u, c0 + j));
    }
    return b;
}

#include <conv2d_texture_main.wgsl>
