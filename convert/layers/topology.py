"""The Keras model config written into model.json, in the form TensorFlow.js 4.22 loads.

The official converter copies the Keras config through. TF.js (tfjs-layers) mirrors the
Keras 2 (tf_keras) serialisation, so:

- Keras 3 configs are rewritten to Keras 2 style (``keras3=True``): ``batch_shape`` ->
  ``batch_input_shape``; DTypePolicy objects -> dtype strings; ``{"args", "kwargs"}`` inbound
  nodes holding ``__keras_tensor__`` objects -> ``[[layer, node_index, tensor_index, kwargs], ...]``
  (a nested model's call nodes shift by one: in Keras 2 and TF.js node 0 of a model with
  inputs is its own construction node, Keras 3 does not count it); single ``input_layers`` /
  ``output_layers`` triples -> lists of triples; ``module``/``registered_name`` and the new
  Keras 3 keys that tf_keras and TF.js do not know are dropped.
- For every config (tf_keras too), what TF.js rejects although it has the layer:
  SeparableConv's ``kernel_initializer/kernel_regularizer/kernel_constraint`` (TF.js throws
  "Fields kernelInitializer, kernelRegularizer and kernelConstraint are invalid for
  SeparableConv2D"; they are unused by the layer) are dropped; ``L1``/``L2`` regularizers (TF.js
  registers only ``L1L2``) become ``L1L2``; a GRU with ``reset_after=true`` (TF.js's GRUCell
  throws: it implements only reset_after=false, and the two are different functions) is
  refused with a clear error that points to ``--output_format=tfjs_graph_model`` (a graph
  model runs it, in TF.js and here). A causal ``Conv1D`` (TF.js loads it, then fails at
  predict) is rewritten too, by ``causal_conv.py`` (it needs the kernel's shape, so the writer
  applies it to TF.js outputs only; Keras outputs keep the causal layer).
"""
from __future__ import annotations

import copy

from wgpu_runtime.dtypes import policy_dtype

from ..errors import ConversionError

MODEL_CLASSES = ("Functional", "Model", "Sequential")
_SEPARABLE = ("SeparableConv1D", "SeparableConv2D")
_SEPARABLE_UNUSED = ("kernel_initializer", "kernel_regularizer", "kernel_constraint")
_REGULARIZER_KEYS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "recurrent_regularizer",
                     "depthwise_regularizer", "pointwise_regularizer", "embeddings_regularizer",
                     "beta_regularizer", "gamma_regularizer")
# Keras 3 keys with no Keras 2 / TF.js meaning, dropped when they hold their default.
_KERAS3_DEFAULTS = {"optional": False, "quantization_config": None, "lora_rank": None, "lora_alpha": None,
                    "input_axes": None, "output_axes": None}
_ACTIVATION_NAMES = {"silu": "swish"}            # Keras 3 name -> the name TF.js registers
_DISTRIBUTIONS = {"untruncated_normal": "normal"}  # VarianceScaling, Keras 3 -> Keras 2 / TF.js


def tfjs_model_config(model_config: dict, keras3: bool) -> dict:
    """A copy of ``model_config`` (``{"class_name", "config"}``) that TF.js can load."""
    config = copy.deepcopy(model_config)
    if keras3:
        _strip_keras3_keys(config)
        _keras3_layer(config, where="model")
    _tfjs_fixes(config)
    return config


# ---------------------------------------------------------------- Keras 3 -> Keras 2

def _strip_keras3_keys(obj) -> None:
    """Drop ``module``/``registered_name`` of serialised objects, DTypePolicy -> its name."""
    if isinstance(obj, dict):
        if "class_name" in obj:
            obj.pop("module", None)
            obj.pop("registered_name", None)
            obj.pop("build_config", None)
            obj.pop("compile_config", None)
        for key, value in list(obj.items()):
            if key == "dtype" and isinstance(value, dict) and "DTypePolicy" in str(value.get("class_name", "")):
                obj[key] = _policy_dtype(value)
            elif key in _KERAS3_DEFAULTS and value == _KERAS3_DEFAULTS[key]:
                del obj[key]
            elif key == "quantization_config":
                raise ConversionError(f"a quantized Keras layer ({obj.get('name', '?')}) cannot be converted: "
                                      "TF.js has no such layers (convert the float model and use --quantize_*)")
            else:
                _strip_keras3_keys(value)
    elif isinstance(obj, list):
        for v in obj:
            _strip_keras3_keys(v)


def _policy_dtype(policy: dict) -> str:
    return policy_dtype(str((policy.get("config") or {}).get("name", "float32")))


def _keras3_layer(layer: dict, where: str) -> None:
    cls, cfg = layer.get("class_name"), layer.get("config")
    if not isinstance(cfg, dict):
        return
    if cls == "InputLayer":
        if "batch_shape" in cfg:
            cfg["batch_input_shape"] = cfg.pop("batch_shape")
        cfg.pop("optional", None)
        if "input_tensor" in cfg:
            cfg.pop("input_tensor")
    if cls in MODEL_CLASSES:
        _keras3_model(cfg, where)
    if cls == "Bidirectional":
        _keras3_bidirectional(cfg, where)
    # Wrappers and RNNs hold layers or cells.
    for key in ("layer", "backward_layer", "cell"):
        if isinstance(cfg.get(key), dict):
            _keras3_layer(cfg[key], f"{where} > {cfg.get('name', cls)}")
    if isinstance(cfg.get("cells"), list):
        for cell in cfg["cells"]:
            _keras3_layer(cell, where)


def _keras3_bidirectional(cfg: dict, where: str) -> None:
    """Keras 3 stores the forward layer already named ``forward_x`` and always a backward layer;
    tf_keras and TF.js store ``x`` (TF.js names the copies ``forward_x``/``backward_x``) and build
    the backward layer themselves (TF.js ignores a ``backward_layer``)."""
    forward, backward = cfg.get("layer") or {}, cfg.pop("backward_layer", None)
    fcfg = forward.get("config") or {}
    base = fcfg.get("name", "")
    if base.startswith("forward_"):
        fcfg["name"] = base = base[len("forward_"):]
    if backward is not None:
        bcfg = dict(backward.get("config") or {})
        mirror = {**fcfg, "name": bcfg.get("name"), "go_backwards": not fcfg.get("go_backwards", False)}
        if backward.get("class_name") != forward.get("class_name") or bcfg != mirror:
            raise ConversionError(f"model config {where} > {cfg.get('name')}: a Bidirectional layer with its own "
                                  "backward_layer cannot be written for TF.js (it always mirrors the forward layer)")


def _keras3_model(cfg: dict, where: str) -> None:
    layers = cfg.get("layers", [])
    models_with_inputs = {l.get("name") or l.get("config", {}).get("name")
                          for l in layers if isinstance(l, dict) and _is_model_with_inputs(l)}
    name = cfg.get("name", "?")
    for layer in layers:
        _keras3_layer(layer, f"{where} > {name}")
        if "inbound_nodes" in layer:
            layer["inbound_nodes"] = [_keras3_node(n, models_with_inputs, f"{name} > {layer.get('name')}")
                                      for n in layer["inbound_nodes"]]
    for key in ("input_layers", "output_layers"):
        if key in cfg:
            cfg[key] = [_shift(list(t), models_with_inputs) for t in _triples(cfg[key], f"{name}: {key}")]


def _is_model_with_inputs(layer: dict) -> bool:
    """Whether TF.js / Keras 2 give this nested model a construction node (node 0)."""
    cls, cfg = layer.get("class_name"), layer.get("config") or {}
    if cls in ("Functional", "Model"):
        return True
    if cls == "Sequential":
        first = (cfg.get("layers") or [{}])[0]
        fcfg = first.get("config") or {}
        return first.get("class_name") == "InputLayer" or "batch_input_shape" in fcfg or "batch_shape" in fcfg
    return False


def _triples(value, where: str) -> list:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    if isinstance(value, dict):      # Keras 3 may key inputs/outputs by name
        return list(value.values())
    if not isinstance(value, list):
        raise ConversionError(f"model config {where}: unexpected value {value!r}")
    return value


def _shift(triple: list, models_with_inputs: set) -> list:
    if triple[0] in models_with_inputs:
        triple[1] += 1
    return triple


def _keras3_node(node, models_with_inputs: set, where: str):
    if isinstance(node, list):           # already Keras 2 style
        return node
    if not isinstance(node, dict) or "args" not in node:
        raise ConversionError(f"model config {where}: unexpected inbound node {node!r}")
    tensors = []
    for arg in node.get("args", []):
        tensors += _keras_tensors(arg, where)
    kwargs = {}
    for key, value in (node.get("kwargs") or {}).items():
        if value is None:
            continue
        if _keras_tensors(value, where, strict=False):
            raise ConversionError(f"model config {where}: a layer call with a tensor keyword argument ({key}) "
                                  "has no Keras 2 / TF.js form")
        kwargs[key] = value
    return [[*_shift(list(t), models_with_inputs), kwargs] for t in tensors]


def _keras_tensors(value, where: str, strict: bool = True) -> list:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return [list(value["config"]["keras_history"])]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out += _keras_tensors(v, where, strict)
        return out
    if strict:
        raise ConversionError(f"model config {where}: a layer call with a non-tensor positional argument "
                              f"({value!r}) has no Keras 2 / TF.js form")
    return []


# ---------------------------------------------------------------- what TF.js rejects

def _tfjs_fixes(obj) -> None:
    if isinstance(obj, list):
        for v in obj:
            _tfjs_fixes(v)
        return
    if not isinstance(obj, dict):
        return
    cls, cfg = obj.get("class_name"), obj.get("config")
    if isinstance(cfg, dict) and isinstance(cls, str):
        if cls in _SEPARABLE:
            for key in _SEPARABLE_UNUSED:
                cfg.pop(key, None)
        if cls in ("GRU", "GRUCell") and cfg.get("reset_after"):
            raise ConversionError(
                f"GRU layer {cfg.get('name')!r} has reset_after=True, which TensorFlow.js does not implement "
                "(its GRUCell computes reset_after=False, a different function: no weight rewrite makes them "
                "equal); rebuild the layer with GRU(..., reset_after=False) and retrain, or convert to a graph model "
                "with --output_format=tfjs_graph_model")
        for key in _REGULARIZER_KEYS:
            if isinstance(cfg.get(key), (dict, str)):
                cfg[key] = _regularizer(cfg[key], cfg.get("name"))
        for key in ("activation", "recurrent_activation"):
            if cfg.get(key) in _ACTIVATION_NAMES:
                cfg[key] = _ACTIVATION_NAMES[cfg[key]]
        if cls == "VarianceScaling" and cfg.get("distribution") in _DISTRIBUTIONS:
            cfg["distribution"] = _DISTRIBUTIONS[cfg["distribution"]]
    for value in obj.values():
        _tfjs_fixes(value)


def _regularizer(reg, layer_name) -> dict:
    """L1 / L2 / L1L2 (any spelling Keras writes) -> {"class_name": "L1L2", ...} as TF.js registers it."""
    if isinstance(reg, str):
        name, cfg = reg, {}
    else:
        name, cfg = reg.get("class_name"), dict(reg.get("config") or {})
    key = str(name).lower().replace("_", "")
    if key == "l1":
        return {"class_name": "L1L2", "config": {"l1": float(cfg.get("l1", 0.01)), "l2": 0.0}}
    if key == "l2":
        return {"class_name": "L1L2", "config": {"l1": 0.0, "l2": float(cfg.get("l2", 0.01))}}
    if key == "l1l2":
        return {"class_name": "L1L2", "config": {"l1": float(cfg.get("l1", 0.0)), "l2": float(cfg.get("l2", 0.0))}}
    return reg


def is_keras3_config(model_config) -> bool:
    """Whether a Keras config is in Keras 3's serialisation (needs the Keras 3 -> 2 rewrite)."""
    found = False

    def walk(obj):
        nonlocal found
        if found:
            return
        if isinstance(obj, dict):
            if "batch_shape" in obj or obj.get("class_name") in ("__keras_tensor__", "DTypePolicy"):
                found = True
                return
            nodes = obj.get("inbound_nodes")
            if isinstance(nodes, list) and any(isinstance(n, dict) for n in nodes):
                found = True
                return
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)
    walk(model_config)
    return found
