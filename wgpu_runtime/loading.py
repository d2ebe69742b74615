"""load_model: a graph or a layers model, by what the model file says it is."""
from __future__ import annotations

from pathlib import Path

from .format.artifacts import format_of, read_json


def model_format(path) -> str:
    """"graph-model" or "layers-model" for a model json file (or the model.json of a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    model = read_json(path)
    return format_of(model, model.get("modelTopology") or {}, path)


def load_model(path, adapter: str | None = None):
    """A GraphModel or a LayersModel (see load_graph_model / load_layers_model)."""
    if model_format(path) == "layers-model":
        from .layers import load_layers_model

        return load_layers_model(path, adapter)
    from .graph.model import load_graph_model

    return load_graph_model(path, adapter)
