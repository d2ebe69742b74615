"""Load-time graph rewrites. Each is one small function over the node list that keeps the
model's outputs unchanged; :func:`apply` runs them in order. Nodes are copied, never mutated, so
the loaded artifacts stay as the file says."""
from __future__ import annotations

import dataclasses

import numpy as np

from .graph import parse_ref

_CONVS = {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}


def fold_pad_into_conv(nodes: list, weights: dict) -> list:
    """Pad (zeros, spatial dims only) feeding only VALID NHWC convolutions -> those convolutions
    with EXPLICIT padding: one copy of the activation less per Pad (Keras' ZeroPadding2D before a
    strided conv, as in MobileNetV2). The Pad node stays (unused) in case something names it."""
    by_name = {n.name: n for n in nodes}
    consumers: dict[str, list] = {}
    for n in nodes:
        for ref in n.inputs:
            src = parse_ref(ref)
            consumers.setdefault(src[0] if src else ref[1:], []).append((n, ref))
    replaced = {}
    for pad in nodes:
        if pad.op != "Pad" or len(pad.inputs) != 2:
            continue
        src = parse_ref(pad.inputs[1])
        const = by_name.get(src[0]) if src else None
        paddings = weights.get(const.name) if const is not None and const.op == "Const" else None
        if paddings is None or np.shape(paddings) != (4, 2):
            continue
        p = np.asarray(paddings).astype(np.int64)
        if p[0].any() or p[3].any() or (p < 0).any():
            continue
        users = consumers.get(pad.name, [])
        if not users or not all(_folds(u, ref, pad.name) for u, ref in users):
            continue
        explicit = [0, 0, int(p[1, 0]), int(p[1, 1]), int(p[2, 0]), int(p[2, 1]), 0, 0]
        for user, _ in users:
            new = replaced.get(user.name, user)
            replaced[user.name] = dataclasses.replace(
                new, inputs=[pad.inputs[0]] + list(new.inputs[1:]),
                attrs={**new.attrs, "padding": "EXPLICIT", "explicit_paddings": explicit})
    return [replaced.get(n.name, n) for n in nodes]


def _folds(user, ref: str, pad_name: str) -> bool:
    return (user.op in _CONVS and user.inputs and user.inputs[0] == ref
            and sum(1 for r in user.inputs if parse_ref(r) and parse_ref(r)[0] == pad_name) == 1
            and (user.attrs.get("padding") or "VALID") == "VALID"
            and (user.attrs.get("data_format") or "NHWC") == "NHWC")


REWRITES = [fold_pad_into_conv]


def apply(nodes: list, weights: dict) -> list:
    for rewrite in REWRITES:
        nodes = rewrite(nodes, weights)
    return nodes
