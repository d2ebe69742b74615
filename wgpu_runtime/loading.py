"""load_model: a graph or a layers model, by what the model file says it is."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PrecisionError
from .format.artifacts import format_of, read_json

if TYPE_CHECKING:
    from .graph.model import GraphModel
    from .layers import LayersModel


def model_format(path: str | os.PathLike[str]) -> str:
    """"graph-model" or "layers-model" for a model json file (or the model.json of a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    model = read_json(path)
    return format_of(model, model.get("modelTopology") or {}, path)


def load_model(path: str | os.PathLike[str], adapter: str | None = None, device=None,
               optimize: bool | None = None, precision: str = "float32") -> GraphModel | LayersModel:
    """A GraphModel or a LayersModel (see load_graph_model / load_layers_model); ``device``: a
    Device or a caller's ``wgpu.GPUDevice`` instead of an ``adapter`` query. ``optimize``: a
    graph model's load-time optimizer (default: on unless env ``WGPU_RUNTIME_OPTIMIZE=0``).
    ``precision``: a graph model's arithmetic, "float32" (default) or "float16" (precision.py);
    a layers model runs in float32."""
    if model_format(path) == "layers-model":
        from .layers import load_layers_model

        if precision != "float32":
            raise PrecisionError(f"precision={precision!r}: a layers model runs in float32 (graph models take float16)")
        return load_layers_model(path, adapter, device)
    from .graph.model import load_graph_model

    return load_graph_model(path, adapter, device, optimize=optimize, precision=precision)
