"""A per-output-channel constant Mul (scale), Add / AddV2 / BiasAdd / Sub (offset) or inference
FusedBatchNorm after a convolution or matmul -> folded into its filter and bias: the producer
becomes _FusedConv2D / FusedDepthwiseConv2dNative / _FusedMatMul with fused_ops [BiasAdd] (as a
converter folds batch norms; the official converter leaves Keras 3's unfolded). Only where the
producer's sole reader is that op, the producer has no activation yet, and the constant
broadcasts along the output channel only. An offset also folds past a fused residual
([BiasAdd, Add]): (conv + b + r) + c = conv + (b + c) + r."""
from __future__ import annotations

import numpy as np

from .common import FUSED, MATMULS, Work, channel_vector, controls, data_inputs, fused_ops, replace, source, text

_OFFSETS = {"Add", "AddV2", "BiasAdd", "Sub"}
_BATCH_NORMS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}


def fold_affine(work: Work) -> None:
    changed = True
    while changed:
        changed = False
        for node in work.list():
            if node.name in work.nodes and _fold(work, work.nodes[node.name]):
                changed = True


def _fold(work: Work, p) -> bool:
    prod = Producer.of(work, p)
    if prod is None:
        return False
    c = work.sole_user(p.name)
    if c is None:
        return False
    ins = data_inputs(c)
    scale = offset = None
    if c.op == "Mul" and len(ins) == 2 and prod.residual is None:
        other = ins[1] if source(ins[0]) == p.name else ins[0]
        scale = channel_vector(work.value(other), prod.rank, prod.cout)
    elif c.op in _OFFSETS and len(ins) == 2 and source(ins[0]) == p.name:
        if c.op == "BiasAdd" and text(c.attrs.get("data_format") or "NHWC") != "NHWC":
            return False
        offset = channel_vector(work.value(ins[1]), prod.rank, prod.cout)
        if offset is not None and c.op == "Sub":
            offset = -offset
    elif c.op in ("Add", "AddV2") and len(ins) == 2 and source(ins[1]) == p.name:
        offset = channel_vector(work.value(ins[0]), prod.rank, prod.cout)
    elif c.op in _BATCH_NORMS and len(ins) == 5 and source(ins[0]) == p.name and prod.residual is None:
        scale, offset = _batch_norm(work, c, ins, prod)
    if scale is None and offset is None:
        return False
    if scale is not None and not np.all(np.isfinite(scale)):
        return False
    filt, bias = prod.filter, prod.bias
    if scale is not None:
        filt = prod.scaled_filter(scale)
        bias = bias * scale
    if offset is not None:
        bias = bias + offset
    f_ref = prod.inputs[1] if filt is prod.filter else work.add_const(c.name + "/filter", filt.astype(np.float32))
    b_ref = work.add_const(c.name + "/bias", bias.astype(np.float32))
    extra = [prod.residual] if prod.residual is not None else []
    ops = ["BiasAdd", "Add"] if extra else ["BiasAdd"]
    work.set(replace(c, op=FUSED[p.op], inputs=[prod.inputs[0], f_ref, b_ref, *extra, *controls(p, c)],
                     attrs={**prod.attrs, "fused_ops": ops, "num_args": 1 + len(extra)}))
    return True


def _batch_norm(work, c, ins, prod):
    """(scale, offset) of an inference FusedBatchNorm whose statistics are constants."""
    if c.attrs.get("is_training", True) or text(c.attrs.get("data_format") or "NHWC") != "NHWC":
        return None, None
    if not work.only_output_0_read(c.name):
        return None, None
    vals = [channel_vector(work.value(r), 1, prod.cout) for r in ins[1:]]
    if any(v is None for v in vals):
        return None, None
    g, b, mean, var = vals
    eps = float(c.attrs.get("epsilon") or 1e-4)
    s = g / np.sqrt(var + eps)
    return s, b - mean * s


class Producer:
    """A convolution / matmul whose filter (and bias) are constants and that has no activation
    yet: what a scale or offset folds into."""

    def __init__(self, node, filt, bias, residual, rank, cout, axis):
        self.node, self.op, self.inputs, self.attrs = node, node.op, data_inputs(node), node.attrs
        self.filter, self.bias, self.residual, self.rank, self.cout, self.axis = filt, bias, residual, rank, cout, axis

    @classmethod
    def of(cls, work: Work, p, residual_ok: bool = True):
        if p.op not in FUSED or p.name in work.keep:
            return None
        ins = data_inputs(p)
        ops = fused_ops(p)
        if p.op in ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul"):
            if ops not in (["BiasAdd"], ["BiasAdd", "Add"]) or len(ins) != len(ops) + 2:
                return None
            if ops == ["BiasAdd", "Add"] and not residual_ok:
                return None
        elif ops or len(ins) != 2:
            return None
        if text(p.attrs.get("data_format") or "NHWC") != "NHWC":
            return None
        filt = work.value(ins[1])
        if filt is None or filt.dtype != np.float32:
            return None
        if p.op in MATMULS:
            if filt.ndim != 2:
                return None
            axis = 0 if p.attrs.get("transpose_b") else 1
            rank = 2
        else:
            if filt.ndim != 4:
                return None
            axis, rank = 3, 4
        cout = filt.shape[axis] if "Depthwise" not in p.op else filt.shape[2] * filt.shape[3]
        if len(ins) > 2:
            bias = channel_vector(work.value(ins[2]), 1, cout)
            if bias is None:
                return None
        else:
            bias = np.zeros(cout)
        residual = ins[3] if len(ins) > 3 else None
        return cls(p, filt, bias, residual, rank, cout, axis)

    def scaled_filter(self, scale: np.ndarray) -> np.ndarray:
        f = self.filter.astype(np.float64)
        if "Depthwise" in self.op:      # [kh, kw, in, multiplier]: output channel in * mult + m
            return f * scale.reshape(f.shape[2], f.shape[3])
        shape = [1] * f.ndim
        shape[self.axis] = -1
        return f * scale.reshape(shape)
