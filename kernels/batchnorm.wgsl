// Per-channel affine map (inference batch norm, folded): y = x * sb[c] + sb[C + c] with
// c = (i / inner) % C (inner = 1 for channels last, H*W for NCHW).
#include <common.wgsl>

struct Params { n: u32, C: u32, inner: u32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> sb: array<f32>;       // [scale (C), bias (C)]
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let c = i / p.inner % p.C;
    dst[i] = src[i] * sb[c] + sb[p.C + c];
}
