"""The epilogue of fused ops (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul):
``fused_ops`` = [BiasAdd | FusedBatchNorm, Add?, activation?]: scale and bias per output
channel, then (``Add``, as TF's remapper names it) a residual tensor of the output's shape added
per element, then the activation. Extra inputs in that order: bias | scale, offset, mean,
variance; the residual; Prelu's alpha.

:func:`parse` turns a node's attrs and extra inputs into what kernels/epilogue.wgsl needs
(per-channel scale and bias buffers, override constants, and the activation as the template
value ACTIVATION); :func:`reference_epilogue` is the numpy side. Both take the activation's math
from the registry: a fused activation is an element-wise op whose record holds its WGSL
expressions (``OpDef.wgsl``) and its numpy reference, so fusing one more is adding its name to
:data:`ACTIVATIONS`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .registry import REGISTRY

# The activations the epilogue runs, by op name.
ACTIVATIONS = ("Relu", "Relu6", "LeakyRelu", "Prelu", "Elu", "Sigmoid", "Tanh", "Selu")
# Activations whose slope is an extra input (one per channel, from the ep_alpha binding; the
# kernels' override PRELU) -> the op whose expression they run with that slope.
SLOPE_INPUT = {"Prelu": "LeakyRelu"}

# A name in a WGSL expression: an identifier with its member accesses (`p.alpha`), not a
# letter inside a number (`1e-3`).
_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*")
# The registry's element-wise expressions read the LeakyRelu slope as the uniform `p.alpha`;
# the epilogue's activation(x, slope) takes it as a parameter.
_RENAME = {"p.alpha": "slope"}


@lru_cache(maxsize=None)
def activation_wgsl(name: str | None) -> str:
    """The float32 WGSL expression of activation ``name`` of ``x`` (the pre-activation value)
    and ``slope``, as epilogue.wgsl's ``activation(x, slope)`` returns it; ``x`` for none."""
    if name is None:
        return "x"
    op = SLOPE_INPUT.get(name, name)
    expr = (REGISTRY[op].wgsl or {}).get("float32") if op in REGISTRY else None
    if expr is None:
        raise ValueError(f"fused activation {name!r}: op {op} has no float32 WGSL expression in the registry")

    def rename(m):
        ident = re.sub(r"\s+", "", m.group(0))
        if ident in _RENAME:
            return _RENAME[ident]
        if ident.split(".")[0] == "p":
            raise ValueError(f"fused activation {name!r} reads uniform field {ident}: the epilogue has only the slope")
        return m.group(0)

    return _NAME.sub(rename, expr)


def template(activation: str | None) -> dict:
    """The template values of epilogue.wgsl for ``activation`` (None: the identity)."""
    return {"ACTIVATION": activation_wgsl(activation)}


@dataclass
class Epilogue:
    bias: np.ndarray | None = None       # per output channel
    scale: np.ndarray | None = None      # per output channel (folded batch norm)
    activation: str | None = None
    alpha_index: int | None = None       # extra input holding Prelu's alpha
    residual_index: int | None = None    # extra input holding the residual (fused_ops "Add")
    leaky_alpha: float = 0.2
    constants: dict = field(default_factory=dict)    # epilogue.wgsl's overrides
    template: dict = field(default_factory=dict)     # epilogue.wgsl's template values


def parse(attrs: dict, extra: list, n_channels: int, node_name: str = "") -> Epilogue:
    """``extra``: the node's inputs after the main operands, as host values (None when unknown).
    Raises ValueError naming what is unsupported."""
    ops = [o.decode() if isinstance(o, bytes) else o for o in (attrs.get("fused_ops") or [])]
    ep = Epilogue(leaky_alpha=float(attrs.get("leakyrelu_alpha") or 0.2))
    rest = list(ops)
    if rest and rest[0] == "BiasAdd":
        ep.bias = _host(extra, 0, "bias")
        rest.pop(0)
        next_arg = 1
    elif rest and rest[0] == "FusedBatchNorm":
        scale, offset, mean, var = (_host(extra, i, n) for i, n in enumerate(("scale", "offset", "mean", "variance")))
        eps = float(attrs.get("epsilon") or 1e-3)
        inv = (scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps))
        ep.scale = inv.astype(np.float32)
        ep.bias = (offset - mean * inv).astype(np.float32)
        rest.pop(0)
        next_arg = 4
    else:
        next_arg = 0
        if rest and rest[0] == "NoOp":   # [NoOp, activation]: no bias (the converters' depthwise fusion)
            rest.pop(0)
    if rest and rest[0] == "Add":
        ep.residual_index = next_arg
        next_arg += 1
        rest.pop(0)
    if rest:
        act = rest.pop(0)
        if act not in ACTIVATIONS:
            raise ValueError(f"fused activation {act!r} is not supported")
        ep.activation = act
        if act in SLOPE_INPUT:
            ep.alpha_index = next_arg
    if rest:
        raise ValueError(f"unsupported fused_ops sequence {ops}")
    for name in ("bias", "scale"):
        v = getattr(ep, name)
        if v is not None:
            v = np.broadcast_to(np.asarray(v, np.float32).reshape(-1), (n_channels,))
            setattr(ep, name, np.ascontiguousarray(v))
    ep.constants = {"HAS_BIAS": ep.bias is not None, "HAS_SCALE": ep.scale is not None,
                    "PRELU": ep.activation in SLOPE_INPUT, "HAS_RESIDUAL": ep.residual_index is not None}
    ep.template = template(ep.activation)
    return ep


def residual_input(attrs: dict) -> tuple[int, ...]:
    """The node input holding the residual (after the two main operands), or () without one:
    it is device data though it sits among host inputs (OpDef.device_inputs)."""
    ops = [o.decode() if isinstance(o, bytes) else o for o in (attrs.get("fused_ops") or [])]
    if "Add" not in ops:
        return ()
    first = {"BiasAdd": 1, "FusedBatchNorm": 4}.get(ops[0], 0)
    return (2 + first,)


def _host(extra, i, what):
    if i >= len(extra) or extra[i] is None:
        raise ValueError(f"fused {what} must be a constant")
    return np.asarray(extra[i], np.float32)


def reference_epilogue(attrs: dict, y: np.ndarray, extra: list) -> np.ndarray:
    """numpy: the epilogue applied to y (channels last)."""
    ep = parse(attrs, [np.asarray(e) for e in extra], y.shape[-1])
    shape = y.shape
    if ep.scale is not None:
        y = y * ep.scale
    if ep.bias is not None:
        y = y + ep.bias
    if ep.residual_index is not None:
        y = y + np.asarray(extra[ep.residual_index], np.float32)
        if y.shape != shape:
            raise ValueError(f"the fused residual {np.shape(extra[ep.residual_index])} does not broadcast "
                             f"to the output {shape}")
    y = y.astype(np.float32)
    if ep.alpha_index is not None:
        alpha = np.asarray(extra[ep.alpha_index], np.float32)
        return REGISTRY[ep.activation].reference({}, y, alpha.reshape(alpha.shape[-1:]) if alpha.ndim else alpha)
    if ep.activation is not None:
        return REGISTRY[ep.activation].reference({"alpha": ep.leaky_alpha}, y)
    return y


def bind(ctx, ep: Epilogue, first_extra: int, n_channels: int, residual=None) -> list:
    """The four epilogue buffers (bias, scale, alpha, residual) in binding order; dummies where
    unused. ``residual``: the residual in the kernel's output layout (default: the input as is)."""
    def dummy():       # one placeholder buffer per model for every unused (read-only) binding
        return ctx.shared_constant(np.zeros(1, np.float32), "float32", "epilogue-none")

    bias = ctx.constant(ep.bias, "float32", "epilogue-bias") if ep.bias is not None else dummy()
    scale = ctx.constant(ep.scale, "float32", "epilogue-scale") if ep.scale is not None else dummy()
    if ep.alpha_index is not None:
        alpha_t = ctx.inputs[first_extra + ep.alpha_index]
        if alpha_t.value is not None:
            a = np.broadcast_to(np.asarray(alpha_t.value, np.float32).reshape(-1), (n_channels,))
            alpha = ctx.constant(np.ascontiguousarray(a), "float32", "epilogue-alpha")
        else:
            alpha = ctx.device_input(first_extra + ep.alpha_index)
    else:
        alpha = dummy()
    if ep.residual_index is None:
        residual = dummy()
    elif residual is None:
        residual = ctx.device_input(first_extra + ep.residual_index)
    return [bias, scale, alpha, residual]


def residual_check(ep: Epilogue, ctx, first_extra: int) -> None:
    """The residual must be float32 and broadcast to the output's shape without enlarging it."""
    if ep.residual_index is None:
        return
    t = ctx.inputs[first_extra + ep.residual_index]
    out = tuple(ctx.outputs[0].shape)
    shape = tuple(t.shape)
    if t.dtype != "float32" or len(shape) > len(out) or any(
            d not in (1, o) for d, o in zip(shape[::-1], out[::-1])):
        raise ValueError(f"the fused residual ({t.dtype} {shape}) must be float32 and broadcast to the output {out}")
