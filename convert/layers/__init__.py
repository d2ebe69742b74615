"""Layers models: Keras files <-> TF.js layers models (``convert_layers``).

Input -> output pairs:
  keras (HDF5 from tf_keras/Keras 2 or Keras 3), keras_keras (.keras), keras_saved_model
  (tf_keras SavedModel)  ->  tfjs_layers_model
  tfjs_layers_model  ->  tfjs_layers_model (re-shard, re-quantize), keras (HDF5),
  keras_keras (.keras, tf_keras's), keras_saved_model (tf_keras SavedModel)

Weights go in the HDF5 file's order with the official converter's names (tf_keras files give the
official converter's bytes). The Keras config is made loadable by TF.js (``topology.py``) and
runnable by it (``causal_conv.py``: causal Conv1D -> explicit padding + valid Conv1D);
Keras 3 weight paths get the names TF.js gives those weights (``names.py``).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError
from ..options import ConvertOptions
from ..tensorflow_loader import import_tensorflow
from .causal_conv import pad_causal_convs
from .h5 import KerasH5, read_keras_h5
from .names import Keras3WeightNames
from .topology import is_keras3_config, tfjs_model_config
from .writer import write_layers_model

__all__ = ["convert_layers"]

_TO_LAYERS = ("keras", "keras_keras", "keras_saved_model")
_KERAS_OUTPUTS = ("keras", "keras_keras", "keras_saved_model")


def convert_layers(input_path, output_dir, input_format: str, output_format: str = "tfjs_layers_model",
                   options=None) -> Path:
    """Convert; returns the written model.json (or Keras file/folder) path. Raises ConversionError."""
    import_tensorflow()   # isolated from an LLVM a WebGPU adapter may have loaded (tensorflow_loader.py)
    options = _options(options)
    src, dst = Path(input_path), Path(output_dir)
    if input_format in _TO_LAYERS and output_format == "tfjs_layers_model":
        with options.phase("reading the Keras model"):
            model = _read_keras(src, input_format)
        with options.phase("writing the layers model"):
            return _write_from_h5(model, dst, options)
    if input_format == "tfjs_layers_model" and output_format == "tfjs_layers_model":
        return _tfjs_to_tfjs(src, dst, options)
    if input_format == "tfjs_layers_model" and output_format in _KERAS_OUTPUTS:
        from .to_keras import tfjs_to_keras

        return tfjs_to_keras(src, dst, output_format, options)
    raise ConversionError(f"unsupported conversion: --input_format={input_format} to --output_format={output_format}")


def _options(options) -> ConvertOptions:
    if options is None:
        return ConvertOptions()
    if isinstance(options, ConvertOptions):
        return options
    if isinstance(options, dict):          # the brief's dict form: quantize {dtype: globs | None}
        quant = {d: (True if p is None else list(p)) for d, p in (options.get("quantize") or {}).items()}
        known = {"weight_shard_size_bytes", "split_weights_by_layer", "metadata", "overwrite"}
        return ConvertOptions(quantization=quant, **{k: v for k, v in options.items() if k in known})
    raise TypeError(f"options must be a ConvertOptions or a dict, got {type(options).__name__}")


def _read_keras(src: Path, input_format: str) -> KerasH5:
    if input_format == "keras":
        return read_keras_h5(src)
    from .keras_io import read_keras_file, read_keras_saved_model

    if input_format == "keras_keras":
        return read_keras_file(src)
    return read_keras_saved_model(src)


def _write_from_h5(model: KerasH5, dst: Path, options: ConvertOptions) -> Path:
    keras3 = is_keras3_config(model.model_config)
    layers = model.layers
    if keras3:
        layers = _keras3_names(layers, model.model_config)
    topology = {"keras_version": model.keras_version, "backend": model.backend,
                "model_config": _tfjs_config(model.model_config, keras3, layers)}
    if model.training_config is not None:
        topology["training_config"] = model.training_config
    return write_layers_model(dst, topology, layers, options, options.metadata)


def _tfjs_config(model_config: dict, keras3: bool, layers) -> dict:
    """The model config TF.js loads (topology.py) and runs (causal_conv.py: needs the kernels' shapes)."""
    config = tfjs_model_config(model_config, keras3)
    pad_causal_convs(config, {name: value.shape for _, weights in layers for name, value in weights})
    return config


def _keras3_names(layers, model_config: dict, grouped: bool = True):
    """Keras 3 weight paths -> TF.js weight names (names.py). ``grouped``: the layer names are
    the HDF5 groups the weights came from (the top-level layers)."""
    names = Keras3WeightNames(model_config)
    return [(layer, [(names.name(n, layer if grouped else None), v) for n, v in weights]) for layer, weights in layers]


def _tfjs_to_tfjs(src: Path, dst: Path, options: ConvertOptions) -> Path:
    from wgpu_runtime.errors import ModelFormatError
    from wgpu_runtime.format import load_artifacts

    with options.phase("reading the layers model"):
        try:
            art = load_artifacts(src)
        except ModelFormatError as e:
            raise ConversionError(str(e)) from None
        if art.format != "layers-model" or "model_config" not in art.model_topology:
            raise ConversionError(f"{art.path}: not a TF.js layers model (format {art.format!r}); "
                                  "--input_format=tfjs_layers_model needs one")
    topology = dict(art.model_topology)
    config = topology["model_config"]
    keras3 = is_keras3_config(config)
    names = [spec["name"] for spec in art.weight_specs]
    layers = [(n.split("/")[0], [(n, art.weights[n])]) for n in names]
    if keras3:
        layers = _keras3_names(layers, config, grouped=False)
        layers = [(ws[0][0].split("/")[0], ws) for _, ws in layers]
    layers = _merge_by_layer(layers)
    topology["model_config"] = _tfjs_config(config, keras3, layers)
    metadata = {**(art.user_defined_metadata or {}), **(options.metadata or {})} or None
    with options.phase("writing the layers model"):
        return write_layers_model(dst, topology, layers, options, metadata)


def _merge_by_layer(layers):
    out = []
    for layer, weights in layers:
        if out and out[-1][0] == layer:
            out[-1][1].extend(weights)
        else:
            out.append((layer, list(weights)))
    return out
