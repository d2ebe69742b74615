"""Compiled pipelines are cached (a second inference, a new input shape, a second model compile
nothing) and an inference is one submit."""
import sys

import numpy as np

import wgpu_runtime as wr
from wgpu_runtime.models import default_model_path


def test_second_inference_new_shape_and_second_model_compile_nothing(device):
    model = wr.load_graph_model(default_model_path(), adapter=device.backend)
    x = np.random.default_rng(0).random((1, 128, 128, 3), dtype=np.float32)
    model.predict(x)                                  # may compile (unless an earlier test did)
    before = device.pipelines.compiled
    model.predict(x)
    assert device.pipelines.compiled == before, "second inference compiled pipelines"
    x2 = np.concatenate([x, x])
    y2 = model.predict(x2)              # batch 2: a new plan; shapes live in uniforms, so the
    # pipelines are reused -- except the classifier matmul, whose rows-per-thread tile (a WGSL
    # override baked for speed) follows the row count.
    assert device.pipelines.compiled - before <= 1, "new input shape recompiled the model's kernels"
    np.testing.assert_array_equal(y2[0], y2[1])
    after = device.pipelines.compiled
    model.predict(x2)
    again = wr.load_graph_model(default_model_path(), adapter=device.backend)
    again.predict(x)
    again.predict(x2)
    assert device.pipelines.compiled == after, "a second model (or a repeated shape) compiled pipelines"


def test_one_inference_is_one_submit(device, monkeypatch):
    # Counts the submits our code makes (wgpu-py's map_sync makes one of its own to map the
    # staging buffer the outputs are read from).
    model = wr.load_graph_model(default_model_path(), adapter=device.backend)
    x = np.zeros((1, 128, 128, 3), np.float32)
    model.predict(x)
    ours = []
    real = type(device.queue).submit

    def submit(self, buffers):
        if sys._getframe(1).f_globals["__name__"].startswith("wgpu_runtime"):
            ours.append(len(buffers))
        return real(self, buffers)

    monkeypatch.setattr(type(device.queue), "submit", submit)
    model.predict(x)
    assert ours == [1], f"our submits per inference: {ours}"
