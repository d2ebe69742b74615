"""The lowering context: what an op's ``lower`` function uses to put work on the GPU.

An op sees its node's attributes, its input and output :class:`Tensor`s, and calls
:meth:`Lowering.dispatch` once per kernel launch. Buffers are virtual here (:class:`Buf`); the
planner assigns physical buffers by liveness afterwards.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import GraphError
from ..memory import Buf, WGSL_TYPE, device_dtype, nbytes_of, to_device_array
from ..ops.registry import Tensor

WORKGROUP = 64          # default 1-D workgroup size
MAX_GROUPS = 65535      # per dimension (WebGPU default limit)
LOOP_CAP = 65535        # llvmpipe: max loop iterations per invocation (wgpu-lavapipe.md pitfall 2)


@dataclass
class Step:
    kernel: str
    pipeline: object
    bindings: list           # [Buf]
    params: bytes
    grid: tuple[int, int, int]
    node: str
    op: str
    bind_group: object = None
    uniform: object = None


def pack_params(values) -> bytes:
    """Uniform bytes: one 4-byte word per value (int -> u32/i32 bits, float -> f32), padded to 16 B.
    A kernel's ``Params`` struct must list scalar fields in the same order (vec4 fields at 16-byte
    boundaries)."""
    out = bytearray()
    for v in values:
        if isinstance(v, (bool, np.bool_)):
            out += struct.pack("<I", int(v))
        elif isinstance(v, (int, np.integer)):
            out += struct.pack("<I", int(v) & 0xFFFFFFFF)
        else:
            out += struct.pack("<f", float(v))
    if not out:
        out = bytearray(16)
    out += b"\0" * (-len(out) % 16)
    return bytes(out)


def grid_1d(n: int, per_group: int = WORKGROUP) -> tuple[int, int, int]:
    """Workgroup counts covering ``n`` invocations in groups of ``per_group``, folded into two
    dimensions when there are more than 65535 groups. Kernels recover the flat index with
    ``flat_id()`` from common.wgsl."""
    groups = max(1, -(-n // per_group))
    if groups <= MAX_GROUPS:
        return (groups, 1, 1)
    y = -(-groups // MAX_GROUPS)
    return (-(-groups // y), y, 1)


class StepCollector:
    """What :class:`Lowering` calls back into: collects steps, puts host values on the device
    (a model weight once per model, anything else as a per-collector constant). The static
    planner and the dynamic executor's per-node programs both extend it."""

    def __init__(self, model, device):
        self.model = model
        self.device = device
        self.steps: list[Step] = []
        self.consts: list[Buf] = []

    def add_step(self, step: Step) -> None:
        self.steps.append(step)

    def on_device(self, t: Tensor) -> Buf:
        if t.buf is None:
            if t.value is None:
                raise GraphError("a tensor with neither a value nor a buffer reached the GPU")
            if t.weight_key is not None:
                t.buf = self.model.weight_buffer(t.weight_key, t.value, t.dtype)
            else:
                t.buf = Buf(nbytes_of(t.shape), "const", data=to_device_array(t.value, t.dtype))
                self.consts.append(t.buf)
        return t.buf

    def model_constant(self, key: str, array: np.ndarray, dtype: str) -> Buf:
        return self.model.weight_buffer(key, array, dtype)


class Lowering:
    """Context handed to ``OpDef.lower`` for one node."""

    def __init__(self, planner, node, inputs: list[Tensor], outputs: list[Tensor]):
        self.planner = planner
        self.node = node
        self.attrs = node.attrs
        self.inputs = inputs
        self.outputs = outputs

    # -- tensors -------------------------------------------------------------------------
    def device_input(self, i: int) -> Buf:
        """Buffer of input ``i``, uploading it first if it is only known on the host."""
        return self.planner.on_device(self.inputs[i])

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
        return self.planner.model_constant(f"{self.node.name}/{key}", array, dtype)

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
        return WGSL_TYPE[device_dtype(dtype)]

    # -- launches ------------------------------------------------------------------------
    def dispatch(self, kernel: str, bindings: list, grid, params=(), template=None, constants=None):
        """Launch ``kernels/<kernel>`` with storage ``bindings`` (Bufs or Tensors, in binding
        order) then, when ``params`` is given, a uniform buffer at the next binding."""
        bufs = []
        for b in bindings:
            if isinstance(b, Tensor):
                b = b.buf if b.buf is not None else self.planner.on_device(b)
            bufs.append(b)
        for b in bufs:
            if b.nbytes > self.planner.device.max_binding_bytes:
                raise GraphError(f"a {b.nbytes}-byte tensor exceeds this adapter's "
                                 f"{self.planner.device.max_binding_bytes}-byte storage binding limit",
                                 self.node)
        grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
        if max(grid) > MAX_GROUPS:
            raise GraphError(f"kernel {kernel}: {grid} workgroups exceed 65535 per dimension", self.node)
        pipeline = self.planner.device.pipelines.get(kernel, template, constants)
        self.planner.add_step(Step(kernel, pipeline, bufs, pack_params(params) if params != () else b"",
                                   grid, self.node.name, self.node.op))
