"""TF.js layers model -> Keras (tf_keras): rebuild the model from its config, set the weights by
name as TF.js does (``layer/cell/weight`` also matches ``layer/weight``), save."""
from __future__ import annotations

import json
from pathlib import Path

from wgpu_runtime.errors import ModelFormatError
from wgpu_runtime.format import load_artifacts

from ..errors import ConversionError
from ..options import ConvertOptions
from .keras_io import first_line, save_keras_model
from .names import Keras3WeightNames
from .topology import is_keras3_config, tfjs_model_config


def tfjs_to_keras(src: Path, dst: Path, output_format: str, options: ConvertOptions) -> Path:
    with options.phase("reading the layers model"):
        try:
            art = load_artifacts(src)
        except ModelFormatError as e:
            raise ConversionError(str(e)) from None
        config = art.model_topology.get("model_config")
        if art.format != "layers-model" or not isinstance(config, dict):
            raise ConversionError(f"{art.path}: not a TF.js layers model (format {art.format!r})")
    with options.phase("rebuilding the model in tf_keras"):
        keras3 = is_keras3_config(config)
        weights = dict(art.weights)
        if keras3:
            names = Keras3WeightNames(config)
            weights = {names.name(n): v for n, v in weights.items()}
        model = build_tf_keras_model(tfjs_model_config(config, keras3), weights, art.path)
    with options.phase(f"writing {output_format}"):
        return save_keras_model(model, dst, output_format, options.overwrite)


def build_tf_keras_model(model_config: dict, weights: dict, where):
    import tf_keras

    try:
        model = tf_keras.models.model_from_json(json.dumps(model_config))
    except Exception as e:  # noqa: BLE001 -- Keras raises many kinds; one line names it
        raise ConversionError(f"{where}: tf_keras cannot rebuild the model from its config: {first_line(e)}") from None
    values, missing, used = [], [], set()
    for layer in model.layers:
        for w in layer.weights:
            name = w.name.removesuffix(":0")
            tokens = name.split("/")
            short = "/".join(tokens[:-2] + tokens[-1:])
            key = name if name in weights else short if short in weights else _cell_name(name, weights)
            if key is None:
                missing.append(name)
                continue
            used.add(key)
            values.append(weights[key])
    if missing:
        raise ConversionError(f"{where}: no weights for {len(missing)} variable(s) of the model: {', '.join(missing[:8])}")
    unused = [n for n in weights if n not in used]
    if unused:
        raise ConversionError(f"{where}: {len(unused)} weight(s) match no variable of the model: {', '.join(unused[:8])}")
    try:
        model.set_weights(values)
    except ValueError as e:
        raise ConversionError(f"{where}: weights do not fit the model: {first_line(e)}") from None
    return model


def _cell_name(name: str, weights: dict):
    """tf_keras names an RNN's weight ``lstm/lstm_cell/kernel``; a manifest may have either form."""
    tokens = name.split("/")
    for key in weights:
        kt = key.split("/")
        if len(kt) == len(tokens) + 1 and kt[:-2] + kt[-1:] == tokens:
            return key
    return None

