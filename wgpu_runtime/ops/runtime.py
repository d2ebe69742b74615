"""Runtime ops: ops the dynamic executor runs on the host with access to the runtime (functions,
resources, other ops) -- control flow, TensorList/TensorArray bookkeeping, hash tables, TF-DF
models, random sampling.

Each one's implementation is ``impl(rt, attrs, inputs) -> outputs`` (``OpDef.runtime``), written
against the small runtime interface of :class:`HostRuntime`; the numpy reference is that
implementation on HostRuntime. The dynamic executor implements the same interface on its own
tensors (GPU buffers or host values).
"""
from __future__ import annotations

import numpy as np

from ..dtypes import DEVICE_DTYPES, dtype_of
from .registry import get, register


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
        return dtype_of(t)

    def truth(self, t) -> bool:
        return bool(np.reshape(np.asarray(t), -1)[0])

    def op(self, name: str, attrs: dict, inputs: list) -> list:
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


def shared_resource(rt, kind: str, attrs, make):
    """The resource a create op makes (a hash table, a TF-DF model): one per ``shared_name`` when
    the op names one (a resource made twice is one resource), else a new one each time."""
    name = attrs.get("shared_name") or ""
    resources = getattr(rt, "resources", {})
    obj = resources.get((kind, name)) if name else None
    if obj is None:
        obj = make()
        if name:
            resources[(kind, name)] = obj
    return obj


def runtime_op(*names, impl, shape, cases=(), dtypes=DEVICE_DTYPES, tf_outputs=None):
    """Register ops implemented against the runtime interface: ``impl(rt, attrs, inputs) ->
    outputs`` (``OpDef.runtime``); the numpy reference is ``impl`` on :data:`HOST`."""
    def reference(attrs, *xs):
        return tuple(impl(HOST, attrs, list(xs)))

    return register(*names, reference=reference, shape=shape, runtime=impl, cases=cases, dtypes=dtypes,
                    tf_outputs=tf_outputs)
