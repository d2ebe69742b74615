"""Saving a layers model in the TF.js layers format: model.json (the topology as loaded) plus
weight shards, written atomically by :func:`wgpu_runtime.format.write_artifacts`. Weights keep
the names and order they were loaded with, so TF.js (``tf.loadLayersModel``), the official
converter (tfjs_layers_model -> keras) and this runtime read them back."""
from __future__ import annotations

import copy
from pathlib import Path

from ..format import write_artifacts


def save(model, path, overwrite: bool = True, shard_size: int | None = 4194304) -> Path:
    from .. import __version__

    path = Path(path)
    model_file = "model.json"
    if path.suffix == ".json":
        path, model_file = path.parent, path.name
    model_json = {
        "format": "layers-model",
        "generatedBy": model.meta.get("generatedBy") or f"wgpu-runtime v{__version__}",
        "convertedBy": f"wgpu-runtime v{__version__}",
        "modelTopology": copy.deepcopy(model.topology_json),
    }
    if model.meta.get("userDefinedMetadata") is not None:
        model_json["userDefinedMetadata"] = model.meta["userDefinedMetadata"]
    weights = model.saved_order or model.weights
    groups = [[(w.key, w.value.copy()) for w in weights]]
    return write_artifacts(path, model_json, groups, shard_size=shard_size, model_file=model_file,
                           overwrite=overwrite)
