"""The collector the static planner and the dynamic executor's per-node programs share: what an
op's :class:`~wgpu_runtime.ops.launch.Lowering` calls back into. It collects launch steps and puts
host values on the device (a model weight once per model, anything else as a per-collector
constant), and hands out texture operands (wgpu_runtime/textures.py): weight textures (once per
model where the model keeps them, else per collector) and one scratch texture that every packed
activation of the collector's steps shares, created by :meth:`finish_textures`."""
from __future__ import annotations

from concurrent.futures import Future

import numpy as np

from .. import textures
from ..dtypes import to_device_array
from ..errors import GraphError, KernelCompileError
from ..memory import Buf, nbytes_of
from ..ops.launch import COPY_TO_TEXTURE, Step
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
        # (id of a buffer's root, view offset) -> its latest copy: (step index, root, texels, Tex, slot)
        self._copies: dict[tuple[int, int], tuple] = {}

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

    def _scratch(self, slot: int, width: int, height: int) -> Tex:
        """This collector's scratch texture ``slot`` (one per operand a kernel reads from a copy
        at once), grown to at least width x height."""
        s = self.scratch.get(slot)
        if s is None:
            s = self.scratch[slot] = Tex(width, height, "scratch", label=f"scratch-texture-{slot}")
        s.width, s.height = max(s.width, width), max(s.height, height)
        return s

    def texture_copy(self, src: Buf, texels: int, width: int, height: int, slot: int, node: str, op: str) -> Tex:
        """The first ``texels`` vec4s of ``src`` in scratch texture ``slot`` (width x height at
        least), for the next step to read: a copy step, unless an earlier copy of the same buffer
        still holds them (:meth:`_reuse`). A residual block reads its input twice, as the first
        convolution's input and as the last one's residual: one copy then serves both."""
        if (tex := self._reuse(src, texels, slot)) is not None:
            return tex
        tex = Tex(width, height, "scratch", label=f"scratch-texture-{slot}", scratch=self._scratch(slot, width, height))
        self.add_step(Step(COPY_TO_TEXTURE, None, [src, tex], b"", (0, 0, 0), node, op, texels=texels))
        self._copies[id(src.root), src.offset] = (len(self.steps) - 1, src.root, texels, tex, slot)
        return tex

    def _reuse(self, src: Buf, texels: int, slot: int) -> Tex | None:
        """The texture an earlier copy of ``src`` (the same vec4s) wrote, moved to ``slot`` if it
        was in another one, when that is safe: no step since binds ``src``'s buffer (nothing
        can have changed it) or ``slot``'s texture other than through that copy (nothing
        else there is read or overwritten in between, the earlier readers included). Else None."""
        prev = self._copies.get((id(src.root), src.offset))
        if prev is None:
            return None
        index, root, n, tex, prev_slot = prev
        if root is not src.root or n != texels:
            return None
        target = self.scratch.get(slot)
        for step in self.steps[index + 1:]:
            for b in step.bindings:
                if b is tex:
                    continue
                if isinstance(b, Buf) and b.root is root:
                    return None
                if isinstance(b, Tex) and target is not None and b.scratch is target:
                    return None
        if prev_slot != slot:       # the copy and its readers move to ``slot``: its old slot is free again
            tex.scratch = self._scratch(slot, tex.width, tex.height)
            tex.label = tex.scratch.label
            self._copies[id(src.root), src.offset] = (index, root, n, tex, slot)
        return tex

    def finish_textures(self) -> None:
        """Create the scratch textures, at their final sizes."""
        for s in self.scratch.values():
            if s.gpu is None:
                s.gpu = textures.create(self.device, s.width, s.height, s.label)

    def finish_pipelines(self) -> None:
        """Wait for the steps' pipelines still compiling. Kernels that failed to compile raise one
        KernelCompileError naming the first one's node, with the variant choices made for
        each failed step (all of them: a plan made again avoids every failure at once)."""
        pipes = self.device.pipelines
        first, failed = None, []
        for step in self.steps:
            if isinstance(step.pipeline, Future):
                try:
                    step.pipeline = pipes.resolve(step.pipeline)
                except KernelCompileError as e:     # the pipelines stay futures; a retry compiles anew what failed
                    first = first or (step, e)
                    failed.append(step.choices)
        if first is not None:
            step, e = first
            more = f" (and {len(failed) - 1} more launches)" if len(failed) > 1 else ""
            raise KernelCompileError(f"node {step.node!r} ({step.op}): {e}{more}", e.kernel, failed)
