"""Graph plumbing ops: IdentityN, PlaceholderWithDefault and Print (their outputs alias their
inputs: no launch), ShapeN (the inputs' shapes, computed on the host at plan time), and Const /
Placeholder, registered so that the converter's op check and docs/ops.md know them (the graph
planner handles those nodes itself: a Const is a weight, a Placeholder is fed)."""
from __future__ import annotations

import numpy as np

from .common import B, F, I, alias_all
from .registry import Case, register
from .rows import row_wise


register("IdentityN", reference=lambda attrs, *xs: tuple(xs),
         shape=lambda attrs, ins: [(t.shape, t.dtype) for t in ins], lower=alias_all, dtypes=(F, I, B), rows=row_wise,
         cases=[Case([((2, 3), F), ((4,), I)], tf_inputs=[[0, 1]])])
register("PlaceholderWithDefault", reference=lambda attrs, x: x,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=alias_all, dtypes=(F, I, B), rows=row_wise,
         cases=[Case([((2, 3), F)], attrs={"shape": [2, 3]})])
register("Print", reference=lambda attrs, x, *data: x,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)], lower=lambda ctx: ctx.alias(), dtypes=(F, I, B))
register("ShapeN", reference=lambda attrs, *xs: tuple(np.array(np.shape(x), np.int32) for x in xs),
         shape=lambda attrs, ins: [((t.rank,), I) for t in ins], shape_only=True, dtypes=(F, I, B),
         cases=[Case([((2, 3), F), ((4, 1, 5), F)], tf_inputs=[[0, 1]])])
register("Const", reference=lambda attrs: (_ for _ in ()).throw(
    ValueError("a Const's value is its weight")), shape=lambda attrs, ins: [], dtypes=(F, I, B))
register("Placeholder", reference=lambda attrs: (_ for _ in ()).throw(
    ValueError("a Placeholder is fed")), shape=lambda attrs, ins: [], dtypes=(F, I, B))
