"""THE op registry: every op the runtime can run, described once.

An :class:`OpDef` holds, for one op (or a family of TF op names that share semantics):

* ``reference`` -- the numpy implementation, the oracle for tests, host-side folding and training;
* ``shape``     -- the shape/dtype rule used to plan a graph without running it;
* ``lower``     -- how to run it on the GPU: emits WGSL dispatches through a lowering context
                   (``None`` for ops computed on the host, e.g. shape arithmetic);
* ``host_inputs`` -- input positions whose *values* must be known when planning (axes, shapes,
                   paddings...); negative positions count from the end (ConcatV2's axis);
* ``texture_inputs`` -- positions of a model weight the op's "texture" kernel variant
                   (ops/tiled.py) reads as a texture it uploads itself: where that variant comes
                   first (tiled.texture_first), a model does not preload their buffers (a plan
                   that needs one uploads it on first use);
* ``shape_only`` -- the outputs depend on the inputs' shapes alone (Shape, Size, Rank): always
                   computed on the host at plan time, even from device tensors;
* ``runtime``   -- for a *runtime op* (control flow, TensorLists, tables, random...), its
                   implementation against the runtime interface (ops/runtime.py), run by the
                   dynamic executor with access to functions and resources;
* ``grad``      -- the gradient rule for the autograd (layers models; may be ``None``);
* ``rows``      -- ``rows(name, attrs, ins, outs) -> str | None``: None when the op computes each
                   output row from the same input row alone (``ins`` / ``outs`` planned
                   :class:`Tensor`s whose device tensors, ``value`` None, all have the batch as
                   dim 0), else a short reason ("reduces over the batch"); unset: not known to
                   be row-wise. Decides batch-separable graphs (graph/chunking.py); helpers in
                   ``ops/rows.py``;
* ``cases``     -- op cases (shapes, dtypes, attributes, edge cases) shared by unit tests and
                   the conformance suite.

An op's **family** is the module of ``wgpu_runtime/ops`` that registers it (``conv``, ``reduce``...):
it keys the tolerance policy and groups docs/ops.md; TF.js's official category is a separate,
derived column there.

The converter's op check, the runtime, the conformance suite and docs/ops.md all read this table.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


@dataclass
class Tensor:
    """What an op sees of a tensor while a graph is planned."""

    shape: tuple[int, ...]
    dtype: str
    value: np.ndarray | None = None  # known on the host (a weight, or folded shape arithmetic)
    buf: object = None               # the device buffer holding it, once on the GPU
    weight_key: str | None = None    # the model weight whose bytes these are (uploaded once per model)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Case:
    """One op case. ``inputs``: arrays, or (shape, dtype) specs filled with seeded random data
    (``low``/``high`` bound the values). ``tf_inputs`` groups inputs for TF raw ops taking lists
    (e.g. ``[[0, 1], 2]`` for ConcatV2). ``tol`` overrides the op's default tolerance, with a reason."""

    inputs: Sequence
    attrs: dict = field(default_factory=dict)
    note: str = ""
    low: float = -2.0
    high: float = 2.0
    tf_inputs: list | None = None
    tol: tuple[float, str] | None = None

    def materialize(self, seed: int = 0) -> list[np.ndarray]:
        """The case's input arrays; random specs are filled from a seeded generator."""
        rng = np.random.default_rng(seed)
        out = []
        for spec in self.inputs:
            if isinstance(spec, np.ndarray):
                out.append(spec)
                continue
            shape, dtype, *bounds = spec
            low, high = bounds if bounds else (self.low, self.high)
            if dtype == "bool":
                out.append(rng.random(shape) < 0.5)
            elif dtype == "int32":
                out.append(rng.integers(int(np.floor(low)), int(np.ceil(high)) + 1, size=shape).astype(np.int32))
            else:
                out.append(rng.uniform(low, high, size=shape).astype(dtype))
        return out


@dataclass
class OpDef:
    names: tuple[str, ...]
    family: str                                    # the ops/ module that registers it
    reference: Callable[..., object]               # reference(attrs, *arrays) -> array | tuple of arrays
    shape: Callable[[dict, list[Tensor]], list[tuple[tuple[int, ...], str]]]
    lower: Callable | None = None                  # lower(ctx: ops.launch.Lowering) -> None, emits dispatches
    runtime: Callable | None = None                # runtime(rt, attrs, inputs) -> outputs (runtime ops)
    wgsl: dict | None = None                       # element-wise ops: dtype -> WGSL expression of x (and p.alpha), binary: of a, b
    host_inputs: tuple[int, ...] = ()
    # device_inputs(attrs) -> positions of host_inputs that hold device data for a node's attrs
    # (a fused op's residual, whose position depends on its fused_ops)
    device_inputs: Callable[[dict], tuple[int, ...]] | None = None
    texture_inputs: tuple[int, ...] = ()
    shape_only: bool = False
    grad: Callable | None = None
    cases: list[Case] = field(default_factory=list)
    dtypes: tuple[str, ...] = ("float32",)
    # Reason for a tolerance in ULP-ish terms: (rtol, why). Default: float32 rounding in the
    # kernel vs numpy's float32 arithmetic -- a few ULPs.
    tol: tuple[float, str] = (1e-5, "float32 rounding; WGSL built-ins may differ by a few ULP")
    # Outputs compared with TF's raw op (None: all); later ones are implementation-defined in TF
    # (e.g. FusedBatchNorm's reserve spaces: uninitialized under oneDNN in inference).
    tf_outputs: int | None = None
    # rows(name, attrs, ins, outs) -> None when row-wise, else why not (see the module docstring)
    rows: Callable[[str, dict, list[Tensor], list[Tensor]], str | None] | None = None

    @property
    def runs_on(self) -> str:
        return "gpu" if self.lower is not None else "host"

    def is_host_input(self, pos: int, n_inputs: int, attrs: dict | None = None) -> bool:
        if attrs is not None and self.device_inputs is not None and pos in self.device_inputs(attrs):
            return False
        return pos in self.host_inputs or pos - n_inputs in self.host_inputs

    def row_wise(self, name: str, attrs: dict, ins: list[Tensor], outs: list[Tensor]) -> str | None:
        """None when op ``name`` computes each output row from the same input row alone, else
        why not (:data:`NOT_ROW_WISE` when the op has no ``rows`` rule)."""
        return NOT_ROW_WISE if self.rows is None else self.rows(name, attrs, ins, outs)

    def run_reference(self, attrs: dict, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = self.reference(attrs, *arrays)
        return list(out) if isinstance(out, (tuple, list)) else [out]


NOT_ROW_WISE = "is not known to be row-wise"   # an op without a ``rows`` rule

REGISTRY: dict[str, OpDef] = {}


_OPS_PACKAGE = __name__.rsplit(".", 1)[0] + "."


def _defining_family() -> str | None:
    """The ops/ module being imported that registers an op (found on the call stack), or None
    when the caller is not an op family module (an op registered from elsewhere names its family)."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if frame.f_code.co_name == "<module>" and module.startswith(_OPS_PACKAGE):
            return module[len(_OPS_PACKAGE):]
        frame = frame.f_back
    return None


def register(*names: str, reference, shape, lower=None, runtime=None, wgsl=None, host_inputs=(), shape_only=False,
             grad=None, cases=(), dtypes=("float32",), tol=None, tf_outputs=None, family=None,
             device_inputs=None, rows=None, texture_inputs=()) -> OpDef:
    """Add an op under each of ``names``. Its family is the ops/ module registering it;
    ``family`` is only for ops registered from outside wgpu_runtime/ops."""
    defining = _defining_family()
    if defining is not None and family is not None and family != defining:
        raise ValueError(f"op {names[0]}: an op's family is its module ({defining}), not {family!r}")
    family = defining or family
    if family is None:
        raise ValueError(f"op {names[0]}: registered outside wgpu_runtime/ops without a family")
    op = OpDef(names=tuple(names), family=family, reference=reference, shape=shape, lower=lower,
               runtime=runtime, wgsl=wgsl, host_inputs=tuple(host_inputs), shape_only=shape_only, grad=grad,
               cases=list(cases), dtypes=tuple(dtypes), tf_outputs=tf_outputs, device_inputs=device_inputs,
               rows=rows, texture_inputs=tuple(texture_inputs))
    if tol is not None:
        op.tol = tol
    for n in names:
        if n in REGISTRY:
            raise ValueError(f"op {n} registered twice")
        REGISTRY[n] = op
    return op


def get(name: str) -> OpDef | None:
    return REGISTRY.get(name)


def supported() -> list[str]:
    return sorted(REGISTRY)


def missing_ops(nodes) -> dict[str, list[str]]:
    """op -> names of the nodes using it, for every op of ``nodes`` the registry lacks."""
    missing: dict[str, list[str]] = {}
    for n in nodes:
        if n.op not in REGISTRY:
            missing.setdefault(n.op, []).append(n.name)
    return missing
