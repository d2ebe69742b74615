"""The "uniform" convolution variant (kernels/conv2d_uniform.wgsl): an input of at most 4 channels
per pixel (an image's first layer) with the whole filter in the kernel's uniform block, read at
constant offsets from a generated, fully unrolled body. Mesa's llvmpipe loads such a uniform once
and broadcasts it to the lanes; a texel fetch is a gather and a storage-buffer load a loop over
the lanes (docs/lavapipe.md). Unrolling costs LLVM compile time, so the variant takes at most
MAX_TERMS multiply-adds per output pixel (tiled.uniform_fits)."""
from __future__ import annotations

import numpy as np

MAX_TERMS = 1024      # kh * kw * cin * 4 * n4 per output pixel: MobileNetV2's stem (3x3x3 -> 32) takes 864
MAX_CHANNELS = 4      # input channels per pixel: one or two texels hold them (dense_x.wgsl)
TM = 2                # output pixels per invocation (the stem: 0.48x the texture kernel's time with 2, 0.59x with 1)


def filter_rows(packed: np.ndarray, taps: int, cin: int, cin_p: int) -> np.ndarray:
    """The packed filter ([taps * cin_p + 1, 4 * n4], bias last; conv._pack_filter) without its
    zero rows of padding channels: [taps * cin + 1, 4 * n4], the rows p.fw holds."""
    body = packed[:-1].reshape(taps, cin_p, packed.shape[1])[:, :cin]
    return np.concatenate([body.reshape(taps * cin, -1), packed[-1:]])


def template(kh: int, kw: int, cin: int, n4: int) -> dict:
    """conv2d_uniform.wgsl's template values for a kh x kw filter over ``cin`` input channels
    into 4 * n4 output channels: TM, FILTER_FIELD (the uniform array) and BODY (the unrolled sum)."""
    rows = kh * kw * cin
    lines = []
    for r in range(TM):
        lines.append(f"    let o{r} = origin(min(m0 + {r}u, p.m - 1u));")
        lines += [f"    let a{r}_{ky}_{kx} = pixel_at(o{r}, {ky}u, {kx}u);" for ky in range(kh) for kx in range(kw)]
    for j in range(n4):
        lines.append("    {")
        lines += [f"        var s{r} = p.fw[{rows * n4 + j}];" for r in range(TM)]    # the bias row
        k = 0
        for ky in range(kh):
            for kx in range(kw):
                for ch in range(cin):
                    lines += [f"        s{r} = fma(vec4<f32>(a{r}_{ky}_{kx}.{'xyzw'[ch]}), p.fw[{k * n4 + j}], s{r});"
                              for r in range(TM)]
                    k += 1
        lines.append(f"        let e = epilogue4_params({4 * j}u, p.alpha);")
        lines += [f"        store_at(m0 + {r}u, {j}u, s{r}, e);" for r in range(TM)]
        lines.append("    }")
    return {"TM": TM, "FILTER_FIELD": f"@align(16) fw: array<vec4<f32>, {(rows + 1) * n4}>,", "BODY": "\n".join(lines)}
