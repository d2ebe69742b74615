"""What an op's ``lower`` function uses to put work on the GPU: the lowering context, launch
geometry and the launch limits.

An op sees its node's attributes, its input and output :class:`Tensor`s, and calls
:meth:`Lowering.dispatch` once per kernel launch (or :meth:`Lowering.lower_op` to run another
registry op's lowering as part of its own). Buffers are virtual here (:class:`~wgpu_runtime.memory.Buf`);
whoever collects the steps (the graph planner, the dynamic executor's per-node programs: the
``collector`` below) assigns physical buffers afterwards. This module sits under ``graph/``, as a
kernel's compute context sits under the session that runs it: ops never import ``graph``.

The collector interface: ``device`` (pipelines, limits, is_software), ``add_step(step)``,
``on_device(tensor) -> Buf``, ``model_constant(key, array, dtype) -> Buf``,
``weight_texture(key, matrix) -> Tex``, ``texture_copy(src, texels, width, height, slot, node, op) -> Tex``
(a copy step into a scratch texture, or an earlier copy still holding ``src``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BindingLimitError, GraphError
from .. import dtypes, textures
from ..memory import Buf, nbytes_of
from ..pipelines import WORKGROUP
from ..textures import Tex
from ..uniforms import UniformError, pack_uniforms
from .registry import REGISTRY, Tensor

__all__ = ["COPY_TO_TEXTURE", "LOOP_CAP", "MAX_GROUPS", "WORKGROUP", "Lowering", "Step", "grid_1d", "grid_z", "lower_node"]

MAX_GROUPS = 65535      # workgroups per dimension (WebGPU default limit)
COPY_TO_TEXTURE = "copy-to-texture"     # the kernel name of a step that copies a buffer into a texture
LOOP_CAP = 65535        # llvmpipe: max loop iterations per invocation (docs/lavapipe.md)


@dataclass
class Step:
    """One kernel launch of a plan, or a copy of a buffer into a texture operand (kernel
    COPY_TO_TEXTURE, no pipeline)."""

    kernel: str
    pipeline: object
    bindings: list           # [Buf]
    params: bytes            # the uniform buffer's bytes (b"" when the kernel has none)
    grid: tuple[int, int, int]
    node: str
    op: str
    bind_group: object = None
    uniform: object = None
    texels: int = 0          # a COPY_TO_TEXTURE step: vec4s copied from bindings[0] into bindings[1]
    copies: list | None = None   # ... and its prepared C structs (textures.prepare_copy), in a plan
    choices: tuple = ()      # the kernel-variant choices made while lowering its node (tuning.ChoicePoint)


def grid_1d(n: int, per_group: int = WORKGROUP) -> tuple[int, int, int]:
    """Workgroup counts covering ``n`` invocations in groups of ``per_group``, folded into two
    dimensions when there are more than 65535 groups. Kernels recover the flat index with
    ``flat_id()`` from common.wgsl."""
    groups = max(1, -(-n // per_group))
    if groups <= MAX_GROUPS:
        return (groups, 1, 1)
    y = -(-groups // MAX_GROUPS)
    return (-(-groups // y), y, 1)


def grid_z(groups: int, y: int = 1) -> tuple[int, int, int]:
    """``groups`` workgroups along x (folded into z past 65535; the kernel's flat group index is
    wid.z * nwg.x + wid.x), ``y`` along y: the implicit-matmul convolutions' launch."""
    gz = -(-groups // MAX_GROUPS)
    return (-(-groups // gz), y, gz)


@dataclass
class SubNode:
    """The node a sub-op lowering reports its steps under (``parent/suffix``)."""

    name: str
    op: str
    attrs: dict


def lower_node(collector, op, node, inputs: list[Tensor], outputs: list[Tensor]) -> None:
    """Run ``op``'s lowering for ``node``. A node whose every output is empty launches nothing
    (its outputs get buffers from the collector, unwritten), so no lowering checks for it."""
    if outputs and all(t.size == 0 for t in outputs):
        return
    op.lower(Lowering(collector, node, inputs, outputs))


class Lowering:
    """Context handed to ``OpDef.lower`` for one node."""

    def __init__(self, collector, node, inputs: list[Tensor], outputs: list[Tensor]):
        self.collector = collector
        self.device = collector.device
        self.node = node
        self.attrs = node.attrs
        self.inputs = inputs
        self.outputs = outputs

    @property
    def half(self) -> bool:
        """Whether this node computes its float32 matmul / convolution in f16: the model's
        ``precision`` is "float16" (precision.py; a stand-in model without one: no)."""
        return getattr(self.collector.model, "precision", "float32") == "float16"

    # -- tensors -------------------------------------------------------------------------
    def device_input(self, i: int) -> Buf:
        """Buffer of input ``i``, uploading it first if it is only known on the host."""
        return self.collector.on_device(self.inputs[i])

    def device_output(self, i: int = 0) -> Buf:
        t = self.outputs[i]
        if t.buf is None:
            t.buf = Buf(nbytes_of(t.shape), "temp", label=f"{self.node.name}:{i}")
        return t.buf

    def alias(self, out: int = 0, inp: int = 0) -> None:
        """Output ``out`` is input ``inp`` reinterpreted (Reshape, Squeeze, Identity...): no copy."""
        self.outputs[out].buf = self.device_input(inp)

    def constant(self, array: np.ndarray, dtype: str, key: str) -> Buf:
        """A derived constant (e.g. a repacked filter), uploaded once per model under ``key``."""
        return self.collector.model_constant(f"{self.node.name}/{key}", array, dtype)

    def shared_constant(self, array: np.ndarray, dtype: str, key: str) -> Buf:
        """A constant every node of the model may bind (e.g. the placeholder of an unused
        read-only binding), uploaded once per model under ``key``; stored as ``shared:key``, which
        no weight shares (a TF node name holds no ':')."""
        return self.collector.model_constant(f"shared:{key}", array, dtype)

    def texture_constant(self, matrix: np.ndarray, key: str) -> Tex:
        """A derived float32 [rows, cols] matrix (e.g. a packed filter) as a texture operand,
        uploaded once per model under ``key`` (wgpu_runtime/textures.py)."""
        return self.collector.weight_texture(f"{self.node.name}/{key}", matrix)

    def texture_of(self, src, texels: int, slot: int = 0) -> Tex:
        """The first ``texels`` vec4s of buffer (or tensor) ``src``, copied into the collector's
        scratch texture ``slot`` (textures.py's linear layout) by a copy step; the texture to
        read. A kernel reading two copies takes them from two slots."""
        ext = textures.extent(self.device, texels)
        if ext is None:
            raise GraphError(f"{texels} vec4s do not fit a texture on this device", self.node)
        if isinstance(src, Tensor):
            src = src.buf if src.buf is not None else self.collector.on_device(src)
        return self.collector.texture_copy(src, texels, *ext, slot, self.node.name, self.node.op)

    def temp(self, nbytes: int, label: str = "scratch") -> Buf:
        return Buf(nbytes, "temp", label=f"{self.node.name}/{label}")

    def value(self, i: int) -> np.ndarray:
        """Host value of input ``i`` (an axis, a shape...); a clear error when it depends on data."""
        v = self.inputs[i].value
        if v is None:
            raise GraphError(f"input {i} must be known before running (a constant or shape "
                             f"arithmetic), but it depends on the model's inputs", self.node)
        return v

    def wgsl_type(self, dtype: str) -> str:
        return dtypes.wgsl_type(dtype)

    # -- launches ------------------------------------------------------------------------
    def lower_op(self, op: str, inputs: list[Tensor], outputs: list[Tensor] | None = None,
                 attrs: dict | None = None, suffix: str | None = None, as_node: bool = False) -> None:
        """Run registry op ``op``'s lowering as part of this node's: on ``inputs`` (rearranged or
        reshaped views of this node's tensors), writing ``outputs`` (this node's by default).
        ``attrs`` default to this node's; ``suffix`` names the sub-step (``node/suffix``);
        ``as_node``: the steps and errors name this node and its op (another op's lowering
        standing in for this one's)."""
        if as_node:
            node = SubNode(self.node.name, self.node.op, self.attrs if attrs is None else attrs)
        else:
            node = self.node if suffix is None and attrs is None else SubNode(
                f"{self.node.name}/{suffix or op}", op, self.attrs if attrs is None else attrs)
        lower_node(self.collector, REGISTRY[op], node, inputs, self.outputs if outputs is None else outputs)

    def dispatch(self, kernel: str, bindings: list, grid, params=None, template=None, constants=None):
        """Launch ``kernels/<kernel>`` with storage ``bindings`` (Bufs or Tensors, in binding
        order) then, when ``params`` (field name -> value of the kernel's ``struct Params``) is
        given, a uniform buffer at the next binding."""
        bufs = []
        for b in bindings:
            if isinstance(b, Tensor):
                b = b.buf if b.buf is not None else self.collector.on_device(b)
            bufs.append(b)
        limit = self.device.max_binding_bytes
        for b in bufs:
            if b.nbytes > limit and not isinstance(b, Tex):
                raise BindingLimitError(b.nbytes, limit, self.node)
        grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
        if max(grid) > MAX_GROUPS:
            raise GraphError(f"kernel {kernel}: {grid} workgroups exceed 65535 per dimension", self.node)
        try:
            data = b"" if params is None else pack_uniforms(kernel, template, params)
        except UniformError as e:   # a lowering's bug, reported with its node
            raise GraphError(str(e), self.node) from None
        pipes = self.device.pipelines       # a planner binds its pipelines last: they compile meanwhile
        pipeline = (pipes.get_deferred if self.collector.defer_pipelines else pipes.get)(kernel, template, constants)
        self.collector.add_step(Step(kernel, pipeline, bufs, data, grid, self.node.name, self.node.op))

