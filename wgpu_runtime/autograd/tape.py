"""A small reverse-mode autograd over the op registry (micrograd-sized).

A :class:`Var` holds a numpy value. :func:`apply` runs a registry op's numpy reference (or, for a
few hot ops, its float32 fast path in :mod:`.kernels`) on its inputs' values and, when one of them
requires a gradient, remembers how the result was made (a :class:`Node`: the op, its attributes,
its inputs and outputs). :func:`backward` walks those nodes from a scalar back to the leaves,
calling each op's ``grad`` rule (declared beside its reference in ``wgpu_runtime/ops``)::

    grad(attrs, inputs, outputs, dys) -> [d input_0, d input_1, ...]   (None: no gradient)

``inputs`` and ``outputs`` are the forward values (numpy), ``dys`` one upstream gradient per
output (None for outputs nothing depends on). A rule with a ``needs`` keyword also learns which
inputs want a gradient (it may skip the others: a convolution's data input, say). Plain numpy
arrays given to :func:`apply` are constants (axes, shapes, labels): no gradient flows into them.
"""
from __future__ import annotations

import numpy as np

from ..errors import WgpuRuntimeError
from ..ops import registry
from . import kernels


class GradientError(WgpuRuntimeError):
    """A gradient is needed through an op that has no gradient rule, or a rule misbehaved."""


class Var:
    """A value on the tape. ``requires_grad`` leaves receive ``grad`` from :func:`backward`."""

    __slots__ = ("value", "grad", "requires_grad", "node", "index", "name")

    def __init__(self, value, requires_grad: bool = False, name: str | None = None):
        self.value = value if isinstance(value, np.ndarray) else np.asarray(value)
        self.grad = None
        self.requires_grad = requires_grad
        self.node = None      # the Node that produced it (None for leaves)
        self.index = 0        # which output of that node
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def ndim(self) -> int:
        return self.value.ndim

    def __repr__(self) -> str:
        made = f" from {self.node.op}" if self.node is not None else ""
        return f"Var({self.name or ''}{list(self.shape)} {self.dtype}{made})"


class Node:
    __slots__ = ("op", "opdef", "attrs", "inputs", "outputs", "values")

    def __init__(self, op, opdef, attrs, inputs, outputs, values):
        self.op, self.opdef, self.attrs = op, opdef, attrs
        self.inputs = inputs      # Var or np.ndarray (constant)
        self.outputs = outputs    # list[Var]
        self.values = values      # input values, as the reference saw them


def value_of(x) -> np.ndarray:
    return x.value if isinstance(x, Var) else np.asarray(x)


def apply(op: str, attrs: dict | None, *inputs):
    """Run registry op ``op`` on ``inputs`` (Vars or arrays). One output: a Var; several: a tuple."""
    opdef = registry.get(op)
    if opdef is None:
        raise GradientError(f"op {op!r} is not in the registry")
    attrs = attrs or {}
    values = [value_of(x) for x in inputs]
    outs = kernels.forward(op, opdef, attrs, values)
    tracked = any(isinstance(x, Var) and (x.requires_grad or x.node is not None) for x in inputs)
    result = [Var(o) for o in outs]
    if tracked:
        node = Node(op, opdef, attrs, list(inputs), result, values)
        for i, v in enumerate(result):
            v.node, v.index = node, i
    return result[0] if len(result) == 1 else tuple(result)


_NEEDS: dict = {}


def _takes_needs(fn) -> bool:
    if fn not in _NEEDS:
        import inspect

        try:
            _NEEDS[fn] = "needs" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            _NEEDS[fn] = False
    return _NEEDS[fn]


def _topological(root: Var) -> list[Node]:
    order: list[Node] = []
    seen: set[int] = set()
    stack = [(root.node, False)] if root.node is not None else []
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for x in node.inputs:
            if isinstance(x, Var) and x.node is not None and id(x.node) not in seen:
                stack.append((x.node, False))
    return order


def backward(root: Var, seed: np.ndarray | None = None) -> None:
    """Accumulate d root / d leaf into ``leaf.grad`` for every leaf Var with ``requires_grad``
    that ``root`` depends on. ``seed`` defaults to ones (``root`` is usually a scalar loss)."""
    grads: dict[int, np.ndarray] = {id(root): np.ones_like(root.value) if seed is None else np.asarray(seed)}
    for node in reversed(_topological(root)):
        dys = [grads.pop(id(v), None) for v in node.outputs]
        if all(d is None for d in dys):
            continue
        wants = [isinstance(x, Var) and (x.requires_grad or x.node is not None) for x in node.inputs]
        if not any(wants):
            continue
        if node.opdef.grad is None:
            raise GradientError(f"op {node.op} has no gradient rule; it cannot be trained through "
                                f"(inputs {[list(np.shape(v)) for v in node.values]})")
        outs = [v.value for v in node.outputs]
        if _takes_needs(node.opdef.grad):
            dxs = node.opdef.grad(node.attrs, node.values, outs, dys, needs=wants)
        else:
            dxs = node.opdef.grad(node.attrs, node.values, outs, dys)
        for x, want, dx in zip(node.inputs, wants, dxs):
            if not want or dx is None:
                continue
            if np.shape(dx) != x.shape:
                raise GradientError(f"gradient rule of {node.op} gave shape {np.shape(dx)} for an input "
                                    f"of shape {x.shape}")
            if x.node is None:
                x.grad = dx if x.grad is None else x.grad + dx
            else:
                prev = grads.get(id(x))
                grads[id(x)] = dx if prev is None else prev + dx
    if root.node is None and root.requires_grad:
        root.grad = grads[id(root)] if root.grad is None else root.grad + grads[id(root)]


def vjp(op: str, attrs: dict, inputs: list[np.ndarray], dys: list[np.ndarray]) -> list:
    """Gradients of ``sum(outputs * dys)`` w.r.t. each input of ``op`` (None: not differentiable)."""
    opdef = registry.get(op)
    outs = opdef.run_reference(attrs, inputs)
    return opdef.grad(attrs, list(inputs), outs, list(dys))
