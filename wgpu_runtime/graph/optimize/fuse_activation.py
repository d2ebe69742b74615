"""An activation (ops/fused.py ACTIVATIONS: Relu, Relu6, Elu, LeakyRelu, Sigmoid, Tanh, Selu,
Prelu with a per-channel constant alpha) that is the only reader of a convolution's or matmul's
output -> that producer's fused_ops gains it (after the bias and any residual)."""
from __future__ import annotations

import numpy as np

from ...ops.fused import ACTIVATIONS
from .common import FUSED, Work, channel_vector, controls, data_inputs, replace, source
from .fold_affine import Producer


def fuse_activation(work: Work) -> None:
    for node in work.list():
        p = work.nodes.get(node.name)
        if p is None:
            continue
        prod = Producer.of(work, p)
        if prod is None:
            continue
        c = work.sole_user(p.name)
        if c is None or c.op not in ACTIVATIONS:
            continue
        ins = data_inputs(c)
        if not ins or source(ins[0]) != p.name:
            continue
        attrs = {**prod.attrs}
        extra = []
        if c.op == "Prelu":
            alpha = channel_vector(work.value(ins[1]) if len(ins) == 2 else None, prod.rank, prod.cout)
            if alpha is None:
                continue
            extra = [work.add_const(c.name + "/alpha", alpha.astype(np.float32))]
        elif len(ins) != 1:
            continue
        if c.op == "LeakyRelu":
            alpha = c.attrs.get("alpha")
            attrs["leakyrelu_alpha"] = 0.2 if alpha is None else float(alpha)      # TF's default
        b_ref = prod.inputs[2] if len(prod.inputs) > 2 else work.add_const(c.name + "/bias", prod.bias.astype("float32"))
        residual = [prod.residual] if prod.residual is not None else []
        ops = ["BiasAdd", *(["Add"] if residual else []), c.op]
        work.set(replace(c, op=FUSED[p.op], inputs=[prod.inputs[0], prod.inputs[1], b_ref, *residual, *extra,
                                                     *controls(p, c)],
                         attrs={**attrs, "fused_ops": ops, "num_args": 1 + len(residual) + len(extra)}))
