// Order-preserving u32 keys of sort and selection kernels (top_k.wgsl, top_k_select.wgsl):
// a > b as numbers exactly when key(a) > key(b) as u32, with -0.0 keyed as +0.0 (the two compare
// equal, as in TensorFlow). NaNs get keys too (above +inf with the sign bit clear, below -inf with
// it set): a total order, so a NaN never breaks a kernel's counting.

fn key_f32(v: f32) -> u32 {
    let b0 = bitcast<u32>(v);
    let b = select(b0, 0u, (b0 & 0x7fffffffu) == 0u);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn key_i32(v: i32) -> u32 {
    return bitcast<u32>(v) ^ 0x80000000u;
}
