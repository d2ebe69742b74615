"""Pad (zeros, spatial dims only) feeding only VALID NHWC convolutions -> those convolutions with
EXPLICIT padding: one copy of the activation less per Pad (Keras' ZeroPadding2D before a strided
conv, as in MobileNetV2)."""
from __future__ import annotations

import numpy as np

from .common import CONVS, Work, replace, source, text


def fold_pad_into_conv(work: Work) -> None:
    for pad in work.list():
        if pad.op != "Pad" or len(pad.inputs) != 2 or pad.name in work.keep:
            continue
        paddings = work.value(pad.inputs[1])
        if paddings is None or np.shape(paddings) != (4, 2) or paddings.dtype.kind not in "iu":
            continue
        p = np.asarray(paddings).astype(np.int64)
        if p[0].any() or p[3].any() or (p < 0).any():
            continue
        users = [work.nodes[u] for u in dict.fromkeys(work.users.get(pad.name, []))]
        if not users or not all(_folds(u, pad.name) for u in users):
            continue
        explicit = [0, 0, int(p[1, 0]), int(p[1, 1]), int(p[2, 0]), int(p[2, 1]), 0, 0]
        for user in users:
            work.set(replace(user, inputs=[pad.inputs[0]] + list(user.inputs[1:]),
                             attrs={**user.attrs, "padding": "EXPLICIT", "explicit_paddings": explicit}))


def _folds(user, pad_name: str) -> bool:
    return (user.op in CONVS and bool(user.inputs) and source(user.inputs[0]) == pad_name
            and user.inputs[0] in (pad_name, f"{pad_name}:0")
            and sum(1 for r in user.inputs if source(r) == pad_name) == 1
            and text(user.attrs.get("padding") or "VALID") == "VALID"
            and text(user.attrs.get("data_format") or "NHWC") == "NHWC")
