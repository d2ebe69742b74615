"""_FusedElementwise (internal, made by the load-time optimizer, graph/optimize/fuse_elementwise):
a chain of float32 element-wise ops -- unary, binary with NumPy broadcasting, AddN -- run as ONE
generated kernel (kernels/elementwise_chain.wgsl) instead of one dispatch and one intermediate
tensor per op.

attrs ``steps``: ``[[op, attrs, args], ...]`` in order, each arg ``"i<k>"`` (input k) or
``"s<j>"`` (step j's result); the last step is the output. Every step's math is its registry
record's: the WGSL body is built from ``OpDef.wgsl`` (as ops/fused.py builds the conv
epilogue's activation) and the numpy reference composes ``OpDef.reference``. A NaN input stays
NaN through unary steps (as TF; max / min / clamp may drop it on some adapters). AddN is a sum of
AddV2 steps.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from . import tiled
from .common import F
from .elementwise import _broadcast_dims, _index_mode
from .launch import grid_1d
from .registry import REGISTRY, Case, Tensor, register
from .rows import per_element
from .shapes import broadcast

OP = "_FusedElementwise"
TEXTURE_MIN_ELEMENTS = 1 << 14  # inputs from which a chain reads a texture copy where texture kernels come first
MAX_INPUTS = 7          # + the output: 8 storage buffers, WebGPU's default limit per stage (the kernel's Params.strides: 2 per input)
_IDENT = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*")
_WGSL_FLOAT = re.compile(r"^-?\d+\.\d+(e[+-]?\d+)?$")


@lru_cache(maxsize=None)
def chainable(op: str) -> int:
    """The arity (1 or 2) of ``op`` in a chain: a float32 element-wise registry op whose float32
    WGSL expression reads only x (and LeakyRelu's p.alpha) or a and b, and whose float32 result
    is float32; AddN counts as binary (a sum of AddV2). 0: not chainable."""
    if op == "AddN":
        return 2 if chainable("AddV2") else 0
    d = REGISTRY.get(op)
    expr = (d.wgsl or {}).get(F) if d is not None and d.lower is not None else None
    if expr is None:
        return 0
    names = {re.sub(r"\s+", "", m.group(0)) for m in _IDENT.finditer(expr)}
    fields = {n for n in names if n.startswith("p.")}
    if fields - {"p.alpha"} or "x" in names and ({"a", "b"} & names):
        return 0
    arity = 1 if "x" in names else 2 if {"a", "b"} <= names else 0
    try:
        specs = d.shape({"alpha": 0.2}, [Tensor((2,), F)] * arity)
    except Exception:       # noqa: BLE001 -- a shape rule that wants more than element-wise inputs
        return 0
    return arity if len(specs) == 1 and specs[0][1] == F else 0


def _literal(v: float) -> str:
    s = repr(float(np.float32(v)))
    if "inf" in s or "nan" in s:
        raise ValueError(f"a chain step's alpha must be finite, got {v}")
    return s if _WGSL_FLOAT.match(s) or "e" in s else s + ".0"


def _step_wgsl(j: int, op: str, attrs: dict) -> str:
    expr = REGISTRY[op].wgsl[F]
    if "p.alpha" in re.sub(r"\s+", "", expr):
        alpha = attrs.get("alpha")
        if alpha is None:
            raise ValueError(f"chain step {op} needs its alpha attribute")
        lit = _literal(alpha)
        expr = _IDENT.sub(lambda m: lit if re.sub(r"\s+", "", m.group(0)) == "p.alpha" else m.group(0), expr)
    if chainable(op) == 1:     # NaN in, NaN out
        return f"fn step{j}(x: f32) -> f32 {{\n    return select({expr}, x, chain_is_nan(x));\n}}"
    return f"fn step{j}(a: f32, b: f32) -> f32 {{\n    return {expr};\n}}"


def _reference(attrs, *xs):
    results: list[np.ndarray] = []
    for op, a, args in attrs["steps"]:
        vals = [xs[int(r[1:])] if r[0] == "i" else results[int(r[1:])] for r in args]
        results.append(np.asarray(REGISTRY[op].reference(a, *vals), np.float32))
    return results[-1]


def _shape(attrs, ins):
    for t in ins:
        if t.dtype != F:
            raise TypeError(f"{OP} runs float32 chains, got an input of {t.dtype}")
    return [(broadcast(*[t.shape for t in ins]) if ins else (), F)]


def _quads(rows, n_inputs: int, size: int) -> bool:
    """Whether a chain runs four elements per invocation (vec4 loads and stores): every input is
    the output's layout, a scalar, or varies along a last dim of whole vec4s."""
    if size == 0 or size % 4:
        return False
    ok = {0, 1, 3} if rows[-1][0] % 4 == 0 else {0, 1}     # mode 3: i % p.inner, inner whole vec4s
    return all(_index_mode(rows, k) in ok for k in range(n_inputs))


def _lower(ctx):
    ins, out = ctx.inputs, ctx.outputs[0]
    steps = ctx.attrs["steps"]
    if not 1 <= len(ins) <= MAX_INPUTS:
        raise ValueError(f"{OP} takes 1 to {MAX_INPUTS} inputs, got {len(ins)}")
    rows = _broadcast_dims(out.shape, *[t.shape for t in ins])
    if len(rows) > 8:
        raise ValueError(f"broadcasting over {len(rows)} dims: at most 8 are supported")
    quads = _quads(rows, len(ins), out.size)
    sizes = [r[0] for r in rows] + [0] * (8 - len(rows))
    strides = []            # 2 vec4s per input, zero-padded to MAX_INPUTS inputs (the kernel's NS)
    loads, bindings, srcs = [], [], []
    textured = tiled.texture_first(ctx.device)
    for k, t in enumerate(ins):
        st = [r[k + 1] for r in rows] + [0] * (8 - len(rows))
        strides += [st[:4], st[4:]]
        mode = _index_mode(rows, k)
        index = {0: "i", 1: "0u", 3: "i % p.inner"}.get(mode, f"strided({k}u, i)")
        whole = t.size % 4 == 0 and tiled.fits_textures(ctx.device, t.size // 4)     # texels copied as they are
        if textured and t.size >= TEXTURE_MIN_ELEMENTS and whole:
            # a texture copy (scratch slot k): one texel gather per load instead of a loop over
            # the lanes (llvmpipe: a 1M-element add 0.34x the time)
            srcs.append(ctx.texture_of(t, t.size // 4, slot=k))
            bindings.append(f"@group(0) @binding({k}) var in{k}: texture_storage_2d<rgba32float, read>;")
            if quads:       # (a scalar is never copied: fewer elements than TEXTURE_MIN_ELEMENTS)
                loads.append(f"    let i{k} = textureLoad(in{k}, texel({index}));")
            else:
                bindings.append(f"fn in{k}_at(e: u32) -> f32 {{ return textureLoad(in{k}, texel(e >> 2u))[e & 3u]; }}")
                loads.append(f"    let i{k} = in{k}_at({index});")
        elif quads and mode != 1:
            srcs.append(t)
            bindings.append(f"@group(0) @binding({k}) var<storage, read> in{k}: array<vec4<f32>>;")
            loads.append(f"    let i{k} = in{k}[{index}];")
        else:
            srcs.append(t)
            bindings.append(f"@group(0) @binding({k}) var<storage, read> in{k}: array<f32>;")
            load = f"in{k}[{index}]"
            loads.append(f"    let i{k} = {f'vec4<f32>({load})' if quads else load};")
    strides += [[0] * 4] * (2 * (MAX_INPUTS - len(ins)))
    bindings.append(f"@group(0) @binding({len(ins)}) var<storage, read_write> dst: "
                    f"array<{'vec4<f32>' if quads else 'f32'}>;")
    bindings.append(f"@group(0) @binding({len(ins) + 1}) var<uniform> p: Params;")
    if quads:               # the steps per component; i is a vec4 index
        body = [f"    let s{j}{c} = step{j}({', '.join(a + ('.' if a[0] == 'i' else '') + c for a in args)});"
                for j, (_, _, args) in enumerate(steps) for c in "xyzw"]
        last = len(steps) - 1
        body.append(f"    dst[i] = vec4<f32>({', '.join(f's{last}{c}' for c in 'xyzw')});")
    else:
        body = [f"    let s{j} = step{j}({', '.join(args)});" for j, (_, _, args) in enumerate(steps)]
        body.append(f"    dst[i] = s{len(steps) - 1};")
    n, inner = (out.size // 4, rows[-1][0] // 4) if quads else (out.size, rows[-1][0])
    template = {"BINDINGS": "\n".join(bindings), "LOADS": "\n".join(loads),
                "STEPS": "\n\n".join(_step_wgsl(j, op, a) for j, (op, a, _) in enumerate(steps)),
                "BODY": "\n".join(body), "NS": str(2 * MAX_INPUTS)}
    ctx.dispatch("elementwise_chain.wgsl", [*srcs, ctx.device_output()], grid_1d(n),
                 params={"n": n, "rank": len(rows), "inner": inner,
                         "sizes": [sizes[:4], sizes[4:]], "strides": strides},
                 template=template)


def _case(steps, *inputs, note, **kw):
    return Case(list(inputs), {"steps": steps}, note=note, **kw)


_NAN = np.float32(np.nan)
_CASES = [
    _case([["Mul", {}, ["i0", "i1"]], ["AddV2", {}, ["s0", "i2"]], ["Relu6", {}, ["s1"]]],
          ((2, 5, 6, 8), F, -4, 4), ((8,), F), ((8,), F), note="Mul->AddV2->Relu6, per-channel constants"),
    _case([["Sub", {}, ["i0", "i1"]], ["Mul", {}, ["s0", "i2"]]], ((3, 1, 5), F), ((4, 1), F), ((), F),
          note="Sub->Mul, broadcast both ways and a scalar (strided)"),
    _case([["AddV2", {}, ["i0", "i1"]], ["AddV2", {}, ["s0", "i2"]], ["AddV2", {}, ["s1", "i3"]]],
          ((6, 7), F), ((6, 7), F), ((6, 7), F), ((6, 7), F), note="AddN of 4"),
    _case([["LeakyRelu", {"alpha": 0.1}, ["i0"]], ["Tanh", {}, ["s0"]], ["Mul", {}, ["s1", "s0"]]],
          ((17,), F), note="LeakyRelu(alpha 0.1)->Tanh, a step read twice"),
    _case([["Maximum", {}, ["i0", "i1"]], ["Relu6", {}, ["s0"]], ["Sigmoid", {}, ["s1"]]],
          np.array([_NAN, -1, 3, 8, _NAN, 0.5], np.float32), np.array([0, _NAN, 1, 2, 0, 0.25], np.float32),
          note="NaN in, NaN out (TF)"),
    _case([["SquaredDifference", {}, ["i0", "i1"]], ["Rsqrt", {}, ["s0"]]], ((2, 3, 4, 5, 6, 7), F),
          ((1, 3, 1, 5, 1, 7), F, 2.5, 3.0), note="rank 6, alternating broadcast dims", low=0.0, high=2.0),
    _case([["Exp", {}, ["i0"]], ["Neg", {}, ["s0"]]], ((0, 3), F), note="empty"),
]

register(OP, reference=_reference, shape=_shape, lower=_lower, cases=_CASES, rows=per_element,
         tol=(1e-5, "each step is its registry kernel's expression in float32 (exp, tanh, rsqrt: a few ULP)"))
