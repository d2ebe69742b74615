"""Models shipped inside the package.

``mobilenet_v2_035_128``: MobileNetV2 (alpha 0.35, 128x128x3 input, 1000 classes) with SEEDED
RANDOM weights (not trained), converted by the official tensorflowjs converter 4.22 to a graph
model with float16 weights. ``reference.npz`` next to model.json holds one input ``x``
[1, 128, 128, 3] float32 and TensorFlow's output ``y`` [1, 1000] computed with the dequantized
float16 weights (the weights a runtime decodes), plus ``y_float32`` from the float32 model.
Rebuilt by ``tools/make_default_model.py``.
"""
from __future__ import annotations

import pathlib

DEFAULT_MODEL = "mobilenet_v2_035_128"


def default_model_path() -> pathlib.Path:
    """Folder of the default model (holds model.json, its shards and reference.npz)."""
    try:
        from importlib.resources import files

        path = files(__name__) / DEFAULT_MODEL
        if isinstance(path, pathlib.Path):       # a regular (non-zipped) installation
            return path
    except (ImportError, TypeError, ModuleNotFoundError):
        pass
    return pathlib.Path(__file__).resolve().parent / DEFAULT_MODEL
