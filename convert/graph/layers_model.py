"""A TF.js layers model -> :class:`Frozen`: the layers half of the converter rebuilds it as a
tf_keras .h5 file (``convert_layers(..., "tfjs_layers_model", "keras", ...)``) in a temporary
folder, which is then traced as any tf_keras file (as the official converter does)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..options import ConvertOptions
from .freeze import Frozen
from .keras_model import load_keras_file


def load_layers_model(path: Path, options) -> Frozen:
    from ..layers import convert_layers

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="wgpu-runtime-convert-") as tmp:
        h5 = convert_layers(path, Path(tmp) / "model.h5", "tfjs_layers_model", "keras", ConvertOptions())
        frozen = load_keras_file(Path(h5), options)
    frozen.notes.append("rebuilt from a TF.js layers model")
    return frozen
