"""Control flow: v1 frames (Enter, Exit, NextIteration, Merge, Switch, LoopCond) and v2 functional
ops (While, StatelessWhile, If, StatelessIf calling ``library.function``s).

None of these is a kernel. A graph holding one runs on the dynamic executor
(``wgpu_runtime/graph/dynamic``): its scheduler gives the frame ops their dataflow meaning
(contexts, iterations, untaken branches), and the functional ops are *runtime ops*: host steps
that call back into the executor (``RUNTIME`` below) to run a function, read a predicate, or
run a registry op on whatever the tensors are (GPU buffers there, numpy arrays here). The
registry references give each op its eager TensorFlow meaning (Enter/Exit/NextIteration/LoopCond
pass their input through, Merge forwards its first input).

Runtime ops are shared with tensor_array.py and hash_table.py: ``runtime_op`` registers an op
whose implementation is ``impl(rt, attrs, inputs) -> outputs`` written against the small runtime
interface of :class:`HostRuntime`; the numpy reference is that implementation on HostRuntime.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .registry import Case, register

F, I, B = "float32", "int32", "bool"
ALL = (F, I, B)

# op name -> impl(rt, attrs, inputs) -> list of outputs, for ops the dynamic executor runs on the
# host with access to the runtime (functions, resources, other ops)
RUNTIME: dict[str, Callable] = {}


class HostRuntime:
    """The runtime interface of runtime ops, on numpy arrays (the references). The dynamic
    executor implements the same methods on its own tensors (GPU buffers or host values)."""

    def __init__(self, functions=None):
        self.functions = functions or {}
        self.resources: dict = {}

    def host(self, t) -> np.ndarray:                    # a tensor's value on the host
        return np.asarray(t)

    def value(self, array, dtype: str | None = None):  # a host array as a tensor
        return np.asarray(array) if dtype is None else np.asarray(array).astype(dtype)

    def opaque(self, obj, dtype: str = "variant"):     # a TensorList / handle as a tensor
        return obj

    def obj(self, t):
        return t

    def on_device(self, t) -> bool:                    # only on the GPU (a read-back would be needed)
        return False

    def shape(self, t) -> tuple:
        return tuple(np.shape(t))

    def dtype(self, t) -> str:
        a = np.asarray(t)
        return "bool" if a.dtype == np.bool_ else "int32" if a.dtype.kind in "iu" else "float32"

    def truth(self, t) -> bool:
        return bool(np.reshape(np.asarray(t), -1)[0])

    def op(self, name: str, attrs: dict, inputs: list) -> list:
        from .registry import get

        return get(name).run_reference(attrs, [np.asarray(x) for x in inputs])

    def call(self, function: str, inputs: list) -> list:
        fn = self.functions.get(function)
        if fn is None:
            raise ValueError(f"function {function!r} is not available to the numpy reference "
                             "(functional control flow runs in a model, on the dynamic executor)")
        return list(fn(*inputs))


HOST = HostRuntime()


def typed_obj(rt, t, cls: type, what: str):
    """The object behind the handle tensor ``t`` (``rt.obj``), which must be a ``cls``."""
    obj = rt.obj(t)
    if not isinstance(obj, cls):
        raise ValueError(f"expected {what}, got {type(obj).__name__}")
    return obj


def runtime_op(*names, family: str, impl, shape, cases=(), dtypes=ALL, tf_outputs=None):
    """Register ops implemented against the runtime interface (see the module docstring)."""
    def reference(attrs, *xs):
        return tuple(impl(HOST, attrs, list(xs)))

    op = register(*names, family=family, reference=reference, shape=shape, cases=cases, dtypes=dtypes,
                  tf_outputs=tf_outputs)
    for n in names:
        RUNTIME[n] = impl
    return op


def _same(attrs, ins):
    return [(ins[0].shape, ins[0].dtype)]


# ------------------------------------------------------------------------------ v1 frame ops
# Eager TensorFlow runs these as plain forwards; inside a graph the scheduler routes them. Switch
# has no cases: one of its outputs is never computed, and fetching it is an error (as in TF.js).
def _pass(**attrs):
    return [Case([((3, 4), F)], attrs=attrs), Case([((5,), I)], attrs=attrs), Case([((), B)], attrs=attrs, note="scalar")]


register("Enter", family="control", reference=lambda attrs, x: x, shape=_same, dtypes=ALL,
         cases=_pass(frame_name="loop"))
for _name in ("Exit", "NextIteration"):
    register(_name, family="control", reference=lambda attrs, x: x, shape=_same, dtypes=ALL, cases=_pass())
register("LoopCond", family="control", reference=lambda attrs, x: x, shape=_same, dtypes=(B,),
         cases=[Case([((), B)])])


def _switch_ref(attrs, data, pred):
    empty = np.zeros((0,), data.dtype)
    return (empty, data) if bool(np.reshape(pred, -1)[0]) else (data, empty)


register("Switch", family="control", reference=_switch_ref,
         shape=lambda attrs, ins: [(ins[0].shape, ins[0].dtype)] * 2, dtypes=ALL)
register("Merge", family="control", reference=lambda attrs, *xs: (xs[0], np.int32(0)),
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
runtime_op("While", "StatelessWhile", family="control", impl=_while, shape=_loop_shapes)
runtime_op("If", "StatelessIf", family="control", impl=_if, shape=_if_shapes)
