"""Fuse a traced layers graph's Dense / convolution chains into the registry's fused ops, as the
official converter's graph optimisation does: MatMul | Conv2D | DepthwiseConv2dNative, then
BiasAdd, then an optional activation, each intermediate read by nothing else -> one
_FusedMatMul / _FusedConv2D / FusedDepthwiseConv2dNative node (one kernel launch instead of
three). The fused node takes the name of the chain's last node, so references to it hold."""
from __future__ import annotations

from dataclasses import replace

from ..graph.graph import parse_ref
from ..ops.fused import ACTIVATIONS, SLOPE_INPUT

_FUSED = {"MatMul": "_FusedMatMul", "Conv2D": "_FusedConv2D", "DepthwiseConv2dNative": "FusedDepthwiseConv2dNative"}
# The activations the fused epilogue runs (ops/fused.py), less those whose slope is an extra
# input (Prelu's alpha): this rewrite does not wire it.
_ACTIVATIONS = frozenset(ACTIVATIONS) - frozenset(SLOPE_INPUT)


def fuse(nodes: list, outputs: list[str], weights: dict) -> list:
    by_name = {n.name: n for n in nodes}
    readers: dict[str, int] = {}
    for n in nodes:
        for ref in n.inputs:
            src = parse_ref(ref)
            if src:
                readers[f"{src[0]}:{src[1]}"] = readers.get(f"{src[0]}:{src[1]}", 0) + 1
    for ref in outputs:
        readers[ref] = readers.get(ref, 0) + 1

    def only_reader(node) -> object | None:
        """The single node reading ``node``'s output 0 (None if it is read elsewhere too)."""
        if readers.get(f"{node.name}:0", 0) != 1:
            return None
        hits = [n for n in nodes if any(parse_ref(r) == (node.name, 0) for r in n.inputs)]
        return hits[0] if len(hits) == 1 else None

    drop, replace_by = set(), {}
    for node in nodes:
        fused_op = _FUSED.get(node.op)
        if fused_op is None or node.name in drop:
            continue
        if node.op == "MatMul" and (node.attrs.get("transpose_a") or node.attrs.get("transpose_b")):
            continue
        if (node.attrs.get("data_format") or "NHWC") != "NHWC":
            continue
        bias = only_reader(node)
        if bias is None or bias.op != "BiasAdd" or (bias.attrs.get("data_format") or "NHWC") != "NHWC":
            continue
        bias_src = parse_ref(bias.inputs[1])
        if bias_src is None or by_name[bias_src[0]].op != "Const" or bias_src[0] not in weights:
            continue
        chain, ops, attrs = [node, bias], ["BiasAdd"], dict(node.attrs)
        act = only_reader(bias)
        if act is not None and act.op in _ACTIVATIONS:
            chain.append(act)
            ops.append(act.op)
            if act.op == "LeakyRelu":
                attrs["leakyrelu_alpha"] = float(act.attrs.get("alpha", 0.2))
        last = chain[-1]
        fused = replace(last, op=fused_op, inputs=[node.inputs[0], node.inputs[1], bias.inputs[1]],
                        attrs={**attrs, "fused_ops": ops, "num_args": 1})
        replace_by[last.name] = fused
        drop.update(n.name for n in chain[:-1])
    return [replace_by.get(n.name, n) for n in nodes if n.name not in drop]
