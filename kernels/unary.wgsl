// y[i] = EXPR(x[i]) -- template: T_IN, T_OUT (WGSL types), EXPR (uses x, p.alpha, p.beta).
#include <common.wgsl>

struct Params { n: u32, alpha: f32, beta: f32 }

@group(0) @binding(0) var<storage, read> src: array<{{T_IN}}>;
@group(0) @binding(1) var<storage, read_write> dst: array<{{T_OUT}}>;
@group(0) @binding(2) var<uniform> p: Params;

fn op(x: {{T_IN}}) -> {{T_OUT}} {
    return {{EXPR}};
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    dst[i] = op(src[i]);
}
