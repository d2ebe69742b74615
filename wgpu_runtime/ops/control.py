"""Control flow: v1 frames (Enter, Exit, NextIteration, Merge, Switch, LoopCond) and v2 functional
ops (While, StatelessWhile, If, StatelessIf calling ``library.function``s).

None of these is a kernel. A graph holding one runs on the dynamic executor
(``wgpu_runtime/graph/dynamic``): its scheduler gives the frame ops their dataflow meaning
(contexts, iterations, untaken branches), and the functional ops are *runtime ops*: host steps
that call back into the executor (``OpDef.runtime``) to run a function, read a predicate, or
run a registry op on whatever the tensors are (GPU buffers there, numpy arrays here). The
registry references give each op its eager TensorFlow meaning (Enter/Exit/NextIteration/LoopCond
pass their input through, Merge forwards its first input).

Runtime ops (ops/runtime.py) are shared with tensor_array.py, hash_table.py, tfdf.py and the
random ops of creation.py.
"""
from __future__ import annotations

import numpy as np

from .common import ALL, B, F, I, same_shape
from .registry import Case, register
from .runtime import runtime_op


# ------------------------------------------------------------------------------ v1 frame ops
# Eager TensorFlow runs these as plain forwards; inside a graph the scheduler routes them. Switch
# has no cases: one of its outputs is never computed, and fetching it is an error (as in TF.js).
def _pass(**attrs):
    return [Case([((3, 4), F)], attrs=attrs), Case([((5,), I)], attrs=attrs), Case([((), B)], attrs=attrs, note="scalar")]


register("Enter", reference=lambda attrs, x: x, shape=same_shape, dtypes=ALL,
         cases=_pass(frame_name="loop"))
for _name in ("Exit", "NextIteration"):
    register(_name, reference=lambda attrs, x: x, shape=same_shape, dtypes=ALL, cases=_pass())
register("LoopCond", reference=lambda attrs, x: x, shape=same_shape, dtypes=(B,),
         cases=[Case([((), B)])])


def _switch_ref(attrs, data, pred):
    empty = np.zeros((0,), data.dtype)
    return (empty, data) if bool(np.reshape(pred, -1)[0]) else (data, empty)


register("Switch", reference=_switch_ref,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)] * 2, dtypes=ALL)
register("Merge", reference=lambda attrs, *xs: (xs[0], np.int32(0)),
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype), ((), I)], dtypes=ALL,
         cases=[Case([((2, 3), F), ((2, 3), F)], tf_inputs=[[0, 1]], note="the first available input"),
                Case([((4,), I), ((4,), I), ((4,), I)], tf_inputs=[[0, 1, 2]])])


# ---------------------------------------------------------------------- v2 functional ops
def _while(rt, attrs, ins):
    """TF's While: ``while cond(vars): vars = body(vars)``; the predicate is read on the host
    (a read-back of one value when the GPU computed it)."""
    cond, body = attrs.get("cond"), attrs.get("body")
    state = list(ins)
    while rt.truth(rt.call(cond, state)[0]):
        out = rt.call(body, state)
        if len(out) != len(state):
            raise ValueError(f"while body {body!r} returned {len(out)} values for {len(state)} loop variables")
        state = out
    return state


def _if(rt, attrs, ins):
    branch = attrs.get("then_branch") if rt.truth(ins[0]) else attrs.get("else_branch")
    return rt.call(branch, list(ins[1:]))


def _loop_shapes(attrs, ins):
    """Loop variables keep their shapes (TensorFlow's default shape invariants)."""
    return [(t.shape, t.dtype) for t in ins]


def _if_shapes(attrs, ins):
    shapes = attrs.get("output_shapes") or []
    types = attrs.get("Tout") or []
    return [(tuple(s or ()), t) for s, t in zip(shapes, types)]


# No cases: they call functions of a model (tests/test_dynamic_models.py runs them converted).
runtime_op("While", "StatelessWhile", impl=_while, shape=_loop_shapes)
runtime_op("If", "StatelessIf", impl=_if, shape=_if_shapes)
