"""The collector the static planner and the dynamic executor's per-node programs share: what an
op's :class:`~wgpu_runtime.ops.launch.Lowering` calls back into. It collects launch steps and puts
host values on the device (a model weight once per model, anything else as a per-collector
constant)."""
from __future__ import annotations

import numpy as np

from ..dtypes import to_device_array
from ..errors import GraphError
from ..memory import Buf, nbytes_of
from ..ops.launch import Step
from ..ops.registry import Tensor


class StepCollector:
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
