"""A residual add -- AddV2 / Add / a two-input AddN -- one of whose operands is a convolution's or
matmul's output (read by nothing else) -> that producer with the residual in its epilogue
(fused_ops [BiasAdd, Add]: TF's remapper's name), added per output element before any
activation (fuse_activation may add one after). The other operand must not be a constant (a
constant offset is fold_affine's) and must have the output's shape or broadcast to it (the
kernels read it in the output's layout; the lowering checks)."""
from __future__ import annotations

from .common import FUSED, Work, controls, data_inputs, replace, source
from .fold_affine import Producer


def fuse_residual(work: Work) -> None:
    for node in work.list():
        p = work.nodes.get(node.name)
        if p is None:
            continue
        prod = Producer.of(work, p, residual_ok=False)
        if prod is None:
            continue
        c = work.sole_user(p.name)
        ins = data_inputs(c) if c is not None else []
        if c is None or c.op not in ("Add", "AddV2", "AddN") or len(ins) != 2:
            continue
        other = ins[1] if source(ins[0]) == p.name else ins[0]
        if source(other) == p.name or work.value(other) is not None:
            continue
        f_ref = prod.inputs[1]
        b_ref = prod.inputs[2] if len(prod.inputs) > 2 else work.add_const(c.name + "/bias", prod.bias.astype("float32"))
        work.set(replace(c, op=FUSED[p.op], inputs=[prod.inputs[0], f_ref, b_ref, other, *controls(p, c)],
                         attrs={**prod.attrs, "fused_ops": ["BiasAdd", "Add"], "num_args": 2}))
