"""Causal ``Conv1D`` layers, rewritten into layers TensorFlow.js 4.22 runs.

TF.js loads a ``Conv1D`` with ``padding="causal"`` and then fails at predict ("The support for
CAUSAL padding mode in conv1dWithBias is not implemented yet"). Keras computes a causal
convolution as a left zero padding of ``dilation_rate * (kernel_size - 1)`` steps followed by a
``valid`` convolution (tf_keras ``Conv._compute_causal_padding``, Keras 3 ``BaseConv.call``), for
any stride. TF.js has no ``ZeroPadding1D`` (tfjs-layers registers ``ZeroPadding2D`` only:
"Unknown layer: ZeroPadding1D"), so the padding is a ZeroPadding2D over a width-1 image:

    Reshape([-1, 1, C], "<conv>_causal_expand") -> ZeroPadding2D([[left, 0], [0, 0]], "<conv>_causal_pad")
        -> Reshape([-1, C], "<conv>_causal_squeeze") -> Conv1D(padding="valid")

``C``, the convolution's input channels, comes from its kernel (``[kernel, C / groups,
filters]``); ``-1`` keeps sequences of any length working. The convolution keeps its name,
weights (names, order, values) and node indices, so nothing that refers to it changes; the new
layers have no weights. In a functional model the first new layer takes the convolution's
inbound nodes (one node per call of a shared convolution), and node ``i`` of each layer reads
node ``i`` of the one before. A Sequential's input shape on the convolution
(``batch_input_shape``) moves to the first new layer. New names that are taken get ``_1``, ...

Works on Keras 2 style configs (tf_keras, or Keras 3 after ``topology.py``). Refused with a
clear error: ``channels_first`` and a causal Conv1D inside a wrapper (``TimeDistributed``, ...),
which cannot be split into several layers.
"""
from __future__ import annotations

from ..errors import ConversionError
from .topology import MODEL_CLASSES

CONV1D_CLASSES = ("Conv1D", "Convolution1D")
_INPUT_KEYS = ("batch_input_shape", "batch_size")     # a Sequential's first-layer input, moved
_GRAPH_HINT = "convert with --output_format=tfjs_graph_model"


def pad_causal_convs(model_config: dict, kernel_shapes: dict) -> None:
    """Rewrite every causal Conv1D of ``model_config`` (``{"class_name", "config"}``) in place.
    ``kernel_shapes``: {TF.js weight name ("<layer>/kernel"): shape} of the model's weights."""
    _visit(model_config, "model", kernel_shapes)


def is_causal_conv1d(layer) -> bool:
    if not isinstance(layer, dict):
        return False
    cfg = layer.get("config")
    return (layer.get("class_name") in CONV1D_CLASSES and isinstance(cfg, dict)
            and str(cfg.get("padding", "valid")).lower() == "causal")


def _visit(obj, where: str, kernel_shapes: dict) -> None:
    if isinstance(obj, list):
        for v in obj:
            _visit(v, where, kernel_shapes)
        return
    if not isinstance(obj, dict):
        return
    cls, cfg = obj.get("class_name"), obj.get("config")
    if cls in MODEL_CLASSES and isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        _rewrite_model(cfg, f"{where} > {cfg.get('name', cls)}", kernel_shapes)
        return
    if is_causal_conv1d(obj):
        raise ConversionError(f"model config {where}: causal Conv1D {cfg.get('name')!r} inside a wrapper layer "
                              "cannot be written for TensorFlow.js (it cannot run causal padding, and a wrapped "
                              f"layer cannot be split into padding + convolution); {_GRAPH_HINT}")
    for value in obj.values():
        _visit(value, where, kernel_shapes)


def _rewrite_model(cfg: dict, where: str, kernel_shapes: dict) -> None:
    taken = {_layer_name(layer) for layer in cfg["layers"] if isinstance(layer, dict)}
    out = []
    for layer in cfg["layers"]:
        if is_causal_conv1d(layer):
            out += _padding_layers(layer, taken, where, kernel_shapes)
        else:
            _visit(layer, where, kernel_shapes)
        out.append(layer)
    cfg["layers"] = out


def _layer_name(layer: dict):
    return layer.get("name") or (layer.get("config") or {}).get("name")


def _padding_layers(conv: dict, taken: set, where: str, kernel_shapes: dict) -> list[dict]:
    """The layers that pad ``conv``'s input; ``conv`` becomes a valid convolution reading them."""
    cfg = conv["config"]
    name = _layer_name(conv)
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ConversionError(f"model config {where}: causal Conv1D {name!r} with data_format="
                              f"{cfg.get('data_format')!r} cannot be written for TensorFlow.js (it cannot run causal "
                              f"padding, and the rewrite pads channels_last sequences only); {_GRAPH_HINT}")
    channels = _input_channels(cfg, name, where, kernel_shapes)
    left = _one(cfg.get("dilation_rate", 1)) * (_one(cfg["kernel_size"]) - 1)
    common = {"trainable": cfg.get("trainable", True), **({"dtype": cfg["dtype"]} if "dtype" in cfg else {})}
    layers = [("Reshape", "causal_expand", {"target_shape": [-1, 1, channels]}),
              ("ZeroPadding2D", "causal_pad", {"padding": [[left, 0], [0, 0]], "data_format": "channels_last"}),
              ("Reshape", "causal_squeeze", {"target_shape": [-1, channels]})]
    out = []
    for cls, suffix, fields in layers:
        new_name = _unique(f"{name}_{suffix}", taken)
        taken.add(new_name)
        layer = {"class_name": cls, "config": {"name": new_name, **common, **fields}}
        if "name" in conv:
            layer["name"] = new_name
        out.append(layer)
    for key in _INPUT_KEYS:
        if key in cfg:
            out[0]["config"][key] = cfg.pop(key)
    cfg["padding"] = "valid"
    if "inbound_nodes" in conv:
        nodes = conv["inbound_nodes"]
        out[0]["inbound_nodes"] = [[[*entry[:3], {}] for entry in node] for node in nodes]
        for before, layer in zip(out, out[1:]):
            layer["inbound_nodes"] = [[[before["name"], i, 0, {}]] for i in range(len(nodes))]
        conv["inbound_nodes"] = [[[out[-1]["name"], i, 0, _kwargs(node)]] for i, node in enumerate(nodes)]
    return out


def _input_channels(cfg: dict, name: str, where: str, kernel_shapes: dict) -> int:
    shape = kernel_shapes.get(f"{name}/kernel")
    if shape is None:
        found = [s for n, s in kernel_shapes.items() if n.endswith(f"/{name}/kernel")]
        shape = found[0] if len(found) == 1 else None
    if shape is None or len(shape) != 3:
        raise ConversionError(f"model config {where}: causal Conv1D {name!r} has no 3-D weight '{name}/kernel'; "
                              "its input channels are needed to write it for TensorFlow.js")
    return int(shape[1]) * int(cfg.get("groups", 1) or 1)


def _kwargs(node) -> dict:
    """The call's keyword arguments (Keras 2 repeats them on each input of a node)."""
    for entry in node:
        if len(entry) > 3 and isinstance(entry[3], dict):
            return entry[3]
    return {}


def _one(value) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _unique(name: str, taken: set) -> str:
    candidate, k = name, 1
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate
