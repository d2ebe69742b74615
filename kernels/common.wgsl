// Helpers shared by kernels (inlined with `#include <common.wgsl>`).

// The size of a 1-D workgroup (`@compute @workgroup_size(WORKGROUP)`): the template value the
// renderer fills from wgpu_runtime/pipelines.py, the same number grid_1d() launches with.
const WORKGROUP: u32 = {{WORKGROUP}}u;

// Flat invocation index for a 1-D launch folded into 2-D workgroup counts (see grid_1d()).
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WORKGROUP + lid;
}

// Component i (< 8) of 8 u32 values stored as two vec4 (uniform arrays need 16-byte strides).
fn at8(lo: vec4<u32>, hi: vec4<u32>, i: u32) -> u32 {
    if (i < 4u) { return lo[i]; }
    return hi[i - 4u];
}

// erf: Maclaurin series to x^11 for |x| < 0.5 (truncation < 2e-8; avoids the cancellation in
// 1 - poly*exp near 0), Abramowitz & Stegun 7.1.26 elsewhere (|error| <= 1.5e-7).
fn erf_f32(x: f32) -> f32 {
    if (abs(x) < 0.5) {
        let z = x * x;
        return 1.1283791671 * x * (1.0 + z * (-1.0 / 3.0 + z * (0.1 + z * (-1.0 / 42.0
               + z * (1.0 / 216.0 + z * (-1.0 / 1320.0))))));
    }
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
                   + 0.254829592) * t * exp(-x * x);
    return select(-y, y, x >= 0.0);
}

// pow as TF computes it: a negative base with an integral exponent is defined.
fn pow_f32(a: f32, b: f32) -> f32 {
    if (a >= 0.0 || b != floor(b)) { return pow(a, b); }
    let m = pow(-a, b);
    return select(m, -m, (b * 0.5) != floor(b * 0.5));
}

// tanh that stays finite for large |x| on every backend.
fn tanh_f32(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    let t = (1.0 - e) / (1.0 + e);
    return select(-t, t, x >= 0.0);
}

// Integer floor division / modulo on magnitudes only: GLSL leaves % undefined for negative
// operands, and the GL backend translates WGSL's % to it.
fn floordiv_i32(a: i32, b: i32) -> i32 {
    let ua = u32(abs(a));
    let ub = u32(abs(b));
    let q = i32(ua / ub);
    if ((a < 0) == (b < 0)) { return q; }
    return select(-q, -q - 1, ua - u32(q) * ub != 0u);
}

fn floormod_i32(a: i32, b: i32) -> i32 {
    return a - floordiv_i32(a, b) * b;
}

fn floormod_f32(a: f32, b: f32) -> f32 {
    let r = a % b;
    return select(r, r + b, (r != 0.0) && ((r < 0.0) != (b < 0.0)));
}

fn pow_i32(a: i32, b: i32) -> i32 {
    var r = 1;
    var base = a;
    var e = u32(max(b, 0));
    for (var k = 0u; k < 32u; k++) {
        if (e == 0u) { break; }
        if ((e & 1u) == 1u) { r = r * base; }
        base = base * base;
        e = e >> 1u;
    }
    return r;
}
