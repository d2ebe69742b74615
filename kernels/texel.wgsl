// Texel (x, y) of vec4 i of an operand in wgpu_runtime/textures.py's linear layout: texel
// (i % row width, i / row width), TEXEL_ROW_BITS the log2 of that width.
fn texel(i: u32) -> vec2<u32> {
    return vec2<u32>(i & ((1u << {{TEXEL_ROW_BITS}}u) - 1u), i >> {{TEXEL_ROW_BITS}}u);
}
