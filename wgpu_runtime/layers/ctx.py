"""What a layer builds with: registry ops on tensors, in one of two contexts.

A layer's ``call(ctx, ...)`` is written once against :class:`Ctx` and runs in both:

* :class:`EagerCtx` -- numpy now: each op runs its registry reference through the autograd tape
  (training, evaluation on the CPU, gradient checks). Tensors are :class:`~wgpu_runtime.autograd.Var`
  or plain arrays (constants).
* :class:`GraphCtx` -- records a graph of registry-op :class:`~wgpu_runtime.format.NodeDef` s (plus
  the weights its Const nodes read) that :mod:`wgpu_runtime.graph` plans and runs on the GPU. It
  traces with example values at a stand-in batch size, so every tensor still has a concrete value
  and shape while the graph is recorded; sizes that depend on the batch are written as ``-1`` in
  reshapes or computed from ``Shape`` (folded on the host at plan time), never baked in.

The helpers (``add``, ``matmul``, ``reshape``...) are thin spellings of registry ops, shared by
both contexts.
"""
from __future__ import annotations

import numpy as np

from .. import autograd
from ..dtypes import host_array
from ..format import NodeDef

I32 = np.int32


def _i32(values) -> np.ndarray:
    return np.asarray(values, dtype=I32)


class Ctx:
    """Op-building interface shared by the eager and graph contexts."""

    training: bool = False

    # -- primitives (per context) ------------------------------------------------------------
    def op(self, name: str, *inputs, **attrs):
        raise NotImplementedError

    def weight(self, w):
        """The tensor of a layer weight (:class:`~wgpu_runtime.layers.base.Weight`)."""
        raise NotImplementedError

    def value(self, t) -> np.ndarray:
        """The (eager) value of ``t``; in a graph context the traced example value."""
        raise NotImplementedError

    def random_mask(self, shape, rate: float) -> np.ndarray:
        """Dropout: a float32 keep-mask scaled by 1 / (1 - rate) (training only)."""
        raise NotImplementedError

    def on_update(self, w, new_value: np.ndarray) -> None:
        """A non-trainable weight's new value (BatchNormalization moving statistics)."""

    def current(self, w) -> np.ndarray:
        """A weight's value with this context's pending updates applied (a layer called twice in
        one step updates its statistics twice, in order, as Keras does)."""
        return w.value

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def f32(v) -> np.ndarray:
        return np.asarray(v, np.float32)

    def add(self, a, b):
        return self.op("AddV2", a, self._c(b))

    def sub(self, a, b):
        return self.op("Sub", self._c(a), self._c(b))

    def mul(self, a, b):
        return self.op("Mul", a, self._c(b))

    def div(self, a, b):
        return self.op("RealDiv", self._c(a), self._c(b))

    def maximum(self, a, b):
        return self.op("Maximum", a, self._c(b))

    def minimum(self, a, b):
        return self.op("Minimum", a, self._c(b))

    def clip(self, x, lo, hi):
        return self.minimum(self.maximum(x, lo), hi)

    def _c(self, v):
        if isinstance(v, (int, float, np.floating, np.integer)) or (isinstance(v, np.ndarray) and v.dtype == np.float64):
            return np.asarray(v, np.float32)
        return v

    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        ra = len(self.shape(a))
        rb = len(self.shape(b))
        if ra == 2 and rb == 2:
            return self.op("MatMul", a, b, transpose_a=transpose_a, transpose_b=transpose_b)
        return self.op("BatchMatMulV2", a, b, adj_x=transpose_a, adj_y=transpose_b)

    def dense(self, x, kernel, bias=None):
        """x @ kernel (+ bias) for x of any rank >= 2 (leading dims folded into rows)."""
        xs = self.shape(x)
        if len(xs) == 2:
            y = self.op("MatMul", x, kernel)
        else:
            y = self.reshape(self.op("MatMul", self.reshape(x, [-1, xs[-1]]), kernel),
                             [-1, *xs[1:-1], self.shape(kernel)[-1]])
        return y if bias is None else self.op("BiasAdd", y, bias)

    def reshape(self, x, shape):
        return self.op("Reshape", x, _i32(shape))

    def transpose(self, x, perm):
        return self.op("Transpose", x, _i32(perm))

    def concat(self, xs, axis: int):
        xs = list(xs)
        return xs[0] if len(xs) == 1 else self.op("ConcatV2", *xs, _i32(axis))

    def split(self, x, n: int, axis: int):
        out = self.op("Split", _i32(axis), x, num_split=n)
        return list(out) if isinstance(out, tuple) else [out]

    def slice(self, x, begin, size):
        return self.op("Slice", x, _i32(begin), _i32(size))

    def take(self, x, index: int, axis: int):
        """x[..., index, ...] along ``axis`` (that axis removed)."""
        rank = len(self.shape(x))
        axis %= rank
        begin = [0] * rank
        begin[axis] = index
        end = [0] * rank
        end[axis] = index + 1
        return self.op("StridedSlice", x, _i32(begin), _i32(end), _i32([1] * rank),
                       begin_mask=(1 << rank) - 1 - (1 << axis), end_mask=(1 << rank) - 1 - (1 << axis),
                       shrink_axis_mask=1 << axis)

    def reduce(self, op: str, x, axes, keepdims=False):
        return self.op(op, x, _i32(list(axes) if isinstance(axes, (list, tuple)) else [axes]), keep_dims=keepdims)

    def mean(self, x, axes, keepdims=False):
        return self.reduce("Mean", x, axes, keepdims)

    def sum(self, x, axes, keepdims=False):
        return self.reduce("Sum", x, axes, keepdims)

    def expand_dims(self, x, axis: int):
        return self.op("ExpandDims", x, _i32(axis))

    def squeeze(self, x, axis: int):
        return self.op("Squeeze", x, squeeze_dims=[axis])

    def over_axis(self, op: str, x, axis: int):
        """Last-axis op ``op`` (Softmax, LogSoftmax) applied over ``axis``: moved last and back."""
        rank = len(self.shape(x))
        axis %= rank
        if axis == rank - 1:
            return self.op(op, x)
        perm = [d for d in range(rank) if d != axis] + [axis]
        return self.transpose(self.op(op, self.transpose(x, perm)), [int(d) for d in np.argsort(perm)])

    def shape(self, x) -> tuple[int, ...]:
        """The static shape (in a graph context: with the example batch size)."""
        return tuple(self.value(x).shape)

    def batch_shape(self, x, tail) -> object:
        """A shape vector [batch of x, *tail] for ops that need a full shape."""
        return _i32([self.shape(x)[0], *tail])

    def zeros(self, x, tail):
        """Zeros of shape [batch of x, *tail]."""
        return np.zeros((self.shape(x)[0], *tail), np.float32)

    def add_activity_loss(self, regularizer, y) -> None:
        """An activity regularizer's penalty on a layer output (training only)."""

    def activation(self, fn, x):
        from .activations import apply as apply_activation

        return apply_activation(self, fn, x)


class EagerCtx(Ctx):
    """Runs ops now through the autograd tape. ``training`` selects Keras' training behaviour
    (dropout on, batch statistics); weights become tape leaves, one Var per weight per context so
    shared layers accumulate gradients. ``track``: True (every trainable weight gets a gradient)
    or a set of ``id(weight)`` to differentiate."""

    def __init__(self, training: bool = False, track=False, rng: np.random.Generator | None = None):
        self.training = training
        self.track = track
        self.rng = rng or np.random.default_rng()
        self.vars: dict[int, autograd.Var] = {}
        self.pending: dict[int, tuple[object, np.ndarray]] = {}
        self.losses: list = []

    def op(self, name, *inputs, **attrs):
        return autograd.apply(name, attrs, *inputs)

    def weight(self, w):
        v = self.vars.get(id(w))
        if v is None:
            tracked = id(w) in self.track if isinstance(self.track, (set, frozenset)) else bool(self.track) and w.trainable
            v = self.vars[id(w)] = autograd.Var(w.value, requires_grad=tracked, name=w.key)
        return v

    def value(self, t):
        return autograd.value_of(t)

    def random_mask(self, shape, rate):
        keep = self.rng.random(shape) >= rate
        return (keep / np.float32(1 - rate)).astype(np.float32)

    def on_update(self, w, new_value):
        self.pending[id(w)] = (w, np.asarray(new_value, np.float32))

    def current(self, w):
        return self.pending.get(id(w), (w, w.value))[1]

    @property
    def updates(self) -> list:
        return list(self.pending.values())

    def add_activity_loss(self, regularizer, y):
        if self.training:       # Keras divides an activity penalty by the batch size
            self.losses.append(self.mul(regularizer(self, y), 1.0 / self.shape(y)[0]))

    def grad_of(self, w) -> np.ndarray | None:
        v = self.vars.get(id(w))
        return None if v is None else v.grad


class Sym:
    """A tensor being recorded in a :class:`GraphCtx`: its graph name and an example value."""

    __slots__ = ("ref", "value")

    def __init__(self, ref: str, value: np.ndarray):
        self.ref, self.value = ref, value

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def ndim(self):
        return self.value.ndim


class GraphCtx(Ctx):
    """Records registry-op nodes for the GPU (inference mode). Each op also runs its reference
    on the example values, so shapes are known while tracing."""

    training = False

    def __init__(self):
        self.nodes: list[NodeDef] = []
        self.weights: dict[str, np.ndarray] = {}
        self._names: set[str] = set()
        self._weight_syms: dict[int, Sym] = {}
        self.scope = "model"

    def _name(self, base: str) -> str:
        base = base.replace(":", "_")
        name, k = base, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def placeholder(self, name: str, shape, dtype: str, example: np.ndarray) -> Sym:
        name = self._name(name)
        self.nodes.append(NodeDef(name, "Placeholder", [], {"dtype": dtype, "shape": tuple(shape)}))
        return Sym(name, example)

    def constant(self, value, base: str = "const") -> Sym:
        value = host_array(value)
        name = self._name(f"{self.scope}/{base}")
        self.nodes.append(NodeDef(name, "Const", [], {"dtype": str(value.dtype)}))
        self.weights[name] = value
        return Sym(name, value)

    def weight(self, w):
        s = self._weight_syms.get(id(w))
        if s is None:
            name = self._name(w.key)
            self.nodes.append(NodeDef(name, "Const", [], {"dtype": "float32"}))
            self.weights[name] = w.value          # the live array: the GPU copy follows it
            s = self._weight_syms[id(w)] = Sym(name, w.value)
        return s

    def op(self, name, *inputs, **attrs):
        from ..ops import registry

        refs, values = [], []
        for x in inputs:
            s = x if isinstance(x, Sym) else self.constant(x)
            refs.append(s.ref)
            values.append(s.value)
        opdef = registry.get(name)
        outs = opdef.run_reference(attrs, values)
        node = self._name(f"{self.scope}/{name}")
        self.nodes.append(NodeDef(node, name, refs, dict(attrs)))
        syms = [Sym(f"{node}:{i}" if i else node, np.asarray(o)) for i, o in enumerate(outs)]
        return syms[0] if len(syms) == 1 else tuple(syms)

    def value(self, t):
        return t.value if isinstance(t, Sym) else np.asarray(t)

    def random_mask(self, shape, rate):
        raise RuntimeError("dropout masks exist only in training (eager) mode")

    def zeros(self, x, tail):
        return self.op("Fill", self.batch_shape(x, tail), np.float32(0))

    def batch_shape(self, x, tail):
        rank = len(self.shape(x))
        shape = self.op("Shape", x)
        batch = self.op("StridedSlice", shape, _i32([0]), _i32([1]), _i32([1]))
        return self.op("ConcatV2", batch, _i32(list(tail)), _i32(0)) if rank else shape
