"""Which WGSL kernels an op's lowering dispatches, found by planning its registry cases.

Nothing is declared by hand: each case is planned as a one-node graph, exactly as the runtime
plans it, on stand-in devices that compile nothing and allocate nothing -- one per device profile
that lowerings distinguish (a software rasteriser with 256-bit subgroups like lavapipe, a
hardware GPU without that trick) -- and every dispatched kernel file is recorded. So the answer
is the same on every machine, GPU or not, and covers every variant. docs/ops.md is generated
from this (tools/gen_ops_doc.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import tuning
from ..dtypes import dtype_of
from ..format.nodes import NodeDef
from ..graph.graph import Graph
from ..graph.plan import Planner
from ..memory import Buf, nbytes_of
from ..ops import registry
from ..ops.launch import COPY_TO_TEXTURE
from ..textures import Tex, texels_of


class _Recorder:
    """Stands in for the pipeline cache: remembers the kernel files asked for."""

    def __init__(self):
        self.kernels: set[str] = set()

    def get(self, kernel, template=None, constants=None):
        self.kernels.add(kernel)
        return None


@dataclass
class _Adapter:
    info: dict


@dataclass
class StandInDevice:
    """What lowerings read of a :class:`wgpu_runtime.device.Device`, without a GPU."""

    adapter: _Adapter
    features: frozenset = frozenset()
    is_software: bool = False
    max_binding_bytes: int = 1 << 31
    pipelines: _Recorder = field(default_factory=_Recorder)

    @property
    def name(self) -> str:
        return self.adapter.info["device"]


def profiles() -> list[StandInDevice]:
    """The device profiles the lowerings tell apart."""
    return [StandInDevice(_Adapter({"device": "llvmpipe (LLVM, 256 bits)", "backend_type": "Vulkan",
                                    "adapter_type": "CPU"}), frozenset({"subgroup", "timestamp-query"}), True),
            StandInDevice(_Adapter({"device": "llvmpipe (LLVM, 256 bits)", "backend_type": "OpenGL",
                                    "adapter_type": "CPU"}), frozenset({"timestamp-query"}), True),
            StandInDevice(_Adapter({"device": "a discrete GPU", "backend_type": "Vulkan",
                                    "adapter_type": "DiscreteGPU"}), frozenset({"subgroup", "timestamp-query"}), False)]


class _Model:
    """What the planner reads of a GraphModel: the weights, and buffers that are never created."""

    def __init__(self, weights):
        self.weights = weights

    def weight_buffer(self, key, value, dtype) -> Buf:
        return Buf(nbytes_of(np.shape(value)), "weight", key=key, label=key)

    def weight_texture(self, key, matrix) -> Tex:
        shape = texels_of(None, np.asarray(matrix, np.float32)).shape
        return Tex(shape[1], shape[0], "weight", key=key, label=key)


class _DrySteps(list):
    """A dry plan: only its steps (the planner attaches ``tensors`` to whatever it returns)."""


class _DryPlanner(Planner):
    defer_pipelines = False         # the stand-in device records kernel names, it compiles nothing
    def _finish(self, inputs, outputs):     # no buffers, bind groups or uploads: only the steps
        return _DrySteps(self.steps)


def plan_kernels(op: str, attrs: dict, inputs: list[np.ndarray], device: StandInDevice,
                 n_outputs: int = 1) -> set[str]:
    """Kernel files dispatched when ``op`` runs on ``inputs`` (host inputs as constants, the rest
    fed at run time, as in wgpu_runtime.graph.single_op) on a stand-in ``device``."""
    opdef = registry.get(op)
    nodes, weights, feeds, refs = [], {}, {}, []
    for i, a in enumerate(inputs):
        name = f"in{i}"
        refs.append(name)
        if opdef.is_host_input(i, len(inputs)):
            nodes.append(NodeDef(name, "Const", [], {"dtype": dtype_of(a)}))
            weights[name] = a
        else:
            nodes.append(NodeDef(name, "Placeholder", [], {"dtype": dtype_of(a), "shape": tuple(a.shape)}))
            feeds[name] = (tuple(a.shape), dtype_of(a))
    nodes.append(NodeDef("op", op, refs, dict(attrs)))
    device.pipelines = _Recorder()
    steps = _DryPlanner(_Model(weights), device).build(Graph(nodes), feeds, [("op", k) for k in range(n_outputs)])
    return {s.kernel for s in steps if s.kernel != COPY_TO_TEXTURE} | device.pipelines.kernels


@dataclass
class OpKernels:
    kernels: set[str] = field(default_factory=set)   # dispatched kernel files
    planned: int = 0                                  # cases planned
    failed: list[str] = field(default_factory=list)   # cases whose planning raised (with why)


def op_kernels(name: str) -> OpKernels:
    """Kernels the op's cases dispatch on any device profile, with any kernel variant its
    lowering chooses among (ops/tiled.py, forced one by one)."""
    op = registry.get(name)
    result = OpKernels()
    if op is None or op.lower is None:
        return result
    for idx, case in enumerate(op.cases):
        inputs = case.materialize(seed=idx)
        n_out = len(op.run_reference(case.attrs, inputs))
        for device in profiles():
            try:
                with tuning.recording() as points:
                    result.kernels |= plan_kernels(name, case.attrs, inputs, device, n_out)
                for p in points:      # the kernel variants the lowering chose among, each forced
                    for other in p.candidates:
                        if other != p.chosen:
                            with tuning.forcing({(p.family, p.shape_class): other}):
                                result.kernels |= plan_kernels(name, case.attrs, inputs, device, n_out)
            except Exception as e:  # noqa: BLE001 -- reported in docs/ops.md, never fatal
                result.failed.append(f"case {idx} on {device.name}: {type(e).__name__}: {e}")
                break
        else:
            result.planned += 1
    return result


_INCLUDE = re.compile(r"^#include <([\w.]+)>$", re.M)


def includes(kernel: str) -> list[str]:
    """Files a kernel inlines with ``#include`` (transitively), in first-seen order."""
    from ..pipelines import kernel_source

    seen: list[str] = []
    stack = [kernel]
    while stack:
        for inc in _INCLUDE.findall(kernel_source(stack.pop())):
            if inc not in seen:
                seen.append(inc)
                stack.append(inc)
    return seen
