// The output block of invocation i in kernels where each invocation computes 8 neighbouring
// output pixels of one row x one channel vec4 (depthwise_main.wgsl, pool.wgsl), from their
// uniform's c4 (channel vec4s), owb (8-pixel blocks per row) and oh (output rows per image).
struct RowBlock {
    c: u32,         // channel vec4
    ox0: u32,       // first output column
    row: u32,       // output row over the batch: b * oh + oy
    b: u32,         // image
    oy: u32,        // output row in the image
}

fn row_block(i: u32) -> RowBlock {
    let rest = i / p.c4;
    let row = rest / p.owb;
    return RowBlock(i % p.c4, (rest % p.owb) * 8u, row, row / p.oh, row % p.oh);
}
