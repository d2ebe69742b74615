// Cumsum / Cumprod along one axis of a [outer, len, inner] view: one invocation per (outer,
// inner) column walks the axis in order (forward or reverse), accumulating in T as TensorFlow's
// CPU kernel does (sequentially), writing the running value before (exclusive) or after adding
// each element. Template: T, OP (the combine expression of `acc` and `v`), INIT (its identity).
// The lowering keeps `len` below llvmpipe's 65535 loop iterations per invocation.
#include <common.wgsl>

struct Params { cols: u32, len: u32, inner: u32, exclusive: u32, reverse: u32 }

@group(0) @binding(0) var<storage, read> src: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = flat_id(wid, nwg, lid);
    if (c >= p.cols) { return; }
    let outer = c / p.inner;
    let base = outer * p.len * p.inner + (c - outer * p.inner);
    var acc: {{T}} = {{INIT}};
    for (var s = 0u; s < p.len; s++) {
        var j = s;
        if (p.reverse != 0u) { j = p.len - 1u - s; }
        let i = base + j * p.inner;
        let v = src[i];
        if (p.exclusive != 0u) {
            dst[i] = acc;
            acc = {{OP}};
        } else {
            acc = {{OP}};
            dst[i] = acc;
        }
    }
}
