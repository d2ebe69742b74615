"""Read a whole-model Keras HDF5 file (tf_keras/Keras 2 or Keras 3 ``model.save("x.h5")``):
its attributes, its Keras config and its weights in the file's order, as the official converter
reads them (tensorflowjs keras_h5_conversion: ``model_weights`` groups in h5py order, each
layer's ``weight_names`` attribute in order, ``:0`` stripped)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConversionError

# Class names some TF 1.13-era files use (the official converter renames them too).
_CLASS_NAME_MAP = {"BatchNormalizationV1": "BatchNormalization", "UnifiedGRU": "GRU", "UnifiedLSTM": "LSTM"}


@dataclass
class KerasH5:
    keras_version: str
    backend: str
    model_config: dict
    training_config: dict | None
    layers: list[tuple[str, list[tuple[str, np.ndarray]]]]   # (h5 layer group, [(weight name, value)])


def read_keras_h5(path) -> KerasH5:
    import h5py

    path = Path(path)
    if not path.exists():
        raise ConversionError(f"{path}: no such file")
    if path.is_dir():
        raise ConversionError(f"{path}: expected a Keras HDF5 file (.h5), got a folder")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ConversionError(f"{path}: not a readable HDF5 file ({_first_line(e)})") from None
    with f:
        try:
            return _read(f, path)
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise ConversionError(f"{path}: malformed Keras HDF5 file ({_first_line(e)})") from None


def _read(f, path: Path) -> KerasH5:
    if "layer_names" in f.attrs and "model_config" not in f.attrs:
        raise ConversionError(f"{path}: a weights-only HDF5 file (Model.save_weights) has no model topology; "
                              "save the whole model (model.save) to convert it to a layers model")
    if "model_config" not in f.attrs or "model_weights" not in f:
        raise ConversionError(f"{path}: not a Keras model file (no 'model_config' attribute or 'model_weights' group)")
    config = _json_attr(f.attrs["model_config"])
    _translate_class_names(config)
    training = _json_attr(f.attrs["training_config"]) if "training_config" in f.attrs else None
    weights = f["model_weights"]
    layers = []
    for name in weights:
        entries = _group_weights(weights[name])
        if entries:
            layers.append((_text(name), entries))
    return KerasH5(keras_version=_text(f.attrs.get("keras_version", "")), backend=_text(f.attrs.get("backend", "")),
                   model_config=config, training_config=training, layers=layers)


def _group_weights(group) -> list[tuple[str, np.ndarray]]:
    import h5py

    if "weight_names" in group.attrs:
        names = [_text(n) for n in group.attrs["weight_names"].tolist()]
        return [(_strip(n), np.array(group[n])) for n in names]
    out = []
    for key in group:
        if isinstance(group[key], h5py.Group):
            out += _group_weights(group[key])
    return out


def _strip(name: str) -> str:
    return name.removesuffix(":0")


def _text(x) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def _json_attr(x) -> dict:
    return x if isinstance(x, dict) else json.loads(_text(x))


def _translate_class_names(obj) -> None:
    if isinstance(obj, dict):
        if obj.get("class_name") in _CLASS_NAME_MAP:
            obj["class_name"] = _CLASS_NAME_MAP[obj["class_name"]]
        for v in obj.values():
            _translate_class_names(v)
    elif isinstance(obj, list):
        for v in obj:
            _translate_class_names(v)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]
