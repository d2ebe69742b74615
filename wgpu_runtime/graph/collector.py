"""The collector the static planner and the dynamic executor's per-node programs share: what an
op's :class:`~wgpu_runtime.ops.launch.Lowering` calls back into. It collects launch steps and puts
host values on the device (a model weight once per model, anything else as a per-collector
constant), and hands out texture operands (wgpu_runtime/textures.py): weight textures (once per
model where the model keeps them, else per collector) and one scratch texture that every packed
activation of the collector's steps shares, created by :meth:`finish_textures`."""
from __future__ import annotations

from concurrent.futures import Future, wait

import numpy as np

from .. import textures
from ..dtypes import to_device_array
from ..errors import GraphError
from ..memory import Buf, nbytes_of
from ..ops.launch import Step
from ..ops.registry import Tensor
from ..textures import Tex


class StepCollector:
    # steps may hold pipeline futures (pipelines.PipelineCache.get_deferred) until finish_pipelines
    defer_pipelines = False

    def __init__(self, model, device):
        self.model = model
        self.device = device
        self.steps: list[Step] = []
        self.consts: list[Buf] = []
        self.textures: list[Tex] = []       # weight textures this collector made
        self.scratch: dict[int, Tex] = {}      # slot -> the shared scratch texture

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

    def weight_texture(self, key: str, matrix: np.ndarray) -> Tex:
        """A float32 [rows, cols] matrix as a texture (textures.texels_of): the model's
        (uploaded once) when it keeps weight textures, else this collector's."""
        keep = getattr(self.model, "weight_texture", None)
        if keep is not None:
            return keep(key, matrix)
        tex = textures.weight_texture(self.device, key, matrix)
        self.textures.append(tex)
        return tex

    def scratch_texture(self, width: int, height: int, slot: int = 0) -> Tex:
        """A binding of this collector's scratch texture ``slot`` (one per operand a kernel reads
        from a copy at once), at least width x height."""
        s = self.scratch.get(slot)
        if s is None:
            s = self.scratch[slot] = Tex(width, height, "scratch", label=f"scratch-texture-{slot}")
        s.width, s.height = max(s.width, width), max(s.height, height)
        return Tex(width, height, "scratch", label=s.label, scratch=s)

    def finish_textures(self) -> None:
        """Create the scratch textures, at their final sizes."""
        for s in self.scratch.values():
            if s.gpu is None:
                s.gpu = textures.create(self.device, s.width, s.height, s.label)

    def finish_pipelines(self) -> None:
        """Wait for the steps' pipelines still compiling; a kernel that failed to compile is a
        GraphError naming its node."""
        pipes = self.device.pipelines
        for step in self.steps:
            if isinstance(step.pipeline, Future):
                try:
                    step.pipeline = pipes.resolve(step.pipeline)
                except GraphError as e:     # the others finish first: a retry then compiles anew what failed
                    wait([st.pipeline for st in self.steps if isinstance(st.pipeline, Future)])
                    raise GraphError(f"node {step.node!r} ({step.op}): {e}") from None
