"""Keras model configs -> one normalised topology.

Reads what the official converter copies from tf_keras / Keras 2 (``class_name`` "Functional",
old "Model", "Sequential" with or without an InputLayer, a bare list of layers from very old
Sequential configs), Keras 3 (``batch_shape``, DTypePolicy dicts, ``__keras_tensor__`` inbound
nodes with ``args``/``kwargs``) and TF.js (null-valued defaults, ``batch_input_shape`` on the
first layer). A Sequential config becomes a chain of calls, so everything downstream sees one
shape of graph: layers, each called one or more times (shared layers), tensors named
``(layer, call index, output index)``.

Keras 2-style configs number a nested model's calls from 1 when that model has its own inputs
(its construction counts as call 0: tf_keras' ``_should_skip_first_node``); Keras 3 does not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..dtypes import policy_dtype
from ..errors import ModelFormatError

MODEL_CLASSES = ("Functional", "Model", "Sequential")


@dataclass(frozen=True)
class Ref:
    """Output ``tensor`` of call ``node`` of layer ``layer``."""
    layer: str
    node: int
    tensor: int


@dataclass
class Call:
    args: list                     # positional arguments (Refs, lists of Refs, constants)
    kwargs: dict = field(default_factory=dict)


@dataclass
class LayerSpec:
    name: str
    class_name: str
    config: dict
    calls: list                    # Call, or None for a call index that is not in this graph


@dataclass
class Topology:
    name: str
    layers: list[LayerSpec]
    inputs: list[Ref]
    outputs: list[Ref]
    keras3: bool = False


def dtype_name(value, default: str = "float32") -> str:
    """A config dtype: "float32", or Keras 3's DTypePolicy {"config": {"name": "mixed_float16"}}."""
    if value is None:
        return default
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name", default)
    if not isinstance(value, str):
        return default
    return policy_dtype(value)


MAX_INPUT_BYTES = 2 << 30    # one example of one input, as float32: more than any device buffer


def input_shape(config: dict) -> tuple | None:
    """The batch shape an InputLayer (or a first layer) declares, batch included (None = unknown);
    dims must be integers >= 0 or None, and one example must fit MAX_INPUT_BYTES."""
    shape = None
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            shape = _dims(config[key], key, config)
            break
    else:
        if config.get("input_shape") is not None:
            shape = (None, *_dims(config["input_shape"], "input_shape", config))
        elif config.get("input_dim") is not None:     # old Dense(input_dim=...)
            shape = (None, *_dims([config["input_dim"]], "input_dim", config))
    if shape is not None and 4 * math.prod(d or 1 for d in shape[1:]) > MAX_INPUT_BYTES:
        raise ModelFormatError(f"layer {config.get('name')!r}: input shape {list(shape)} takes over "
                               f"{MAX_INPUT_BYTES} bytes per example")
    return shape


def _dims(value, key: str, config: dict) -> tuple:
    if not isinstance(value, (list, tuple)) or not all(
            d is None or (isinstance(d, (int, float)) and not isinstance(d, bool) and float(d).is_integer() and d >= 0)
            for d in value):
        raise ModelFormatError(f"layer {config.get('name')!r}: {key} must be a list of sizes (integers >= 0 or "
                               f"null), got {value!r}"[:300])
    return tuple(None if d is None else int(d) for d in value)


def _ref(value, where: str) -> Ref:
    if isinstance(value, dict):   # Keras 3 __keras_tensor__
        hist = (value.get("config") or {}).get("keras_history")
        if not isinstance(hist, (list, tuple)) or len(hist) != 3:
            raise ModelFormatError(f"{where}: a __keras_tensor__ without keras_history")
        return Ref(str(hist[0]), int(hist[1]), int(hist[2]))
    if isinstance(value, (list, tuple)) and len(value) >= 3 and isinstance(value[0], str):
        return Ref(value[0], int(value[1]), int(value[2]))
    raise ModelFormatError(f"{where}: cannot read tensor reference {value!r}")


def _is_k3_tensor(v) -> bool:
    return isinstance(v, dict) and v.get("class_name") == "__keras_tensor__"


def _is_k2_tensor(v) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) in (3, 4) and isinstance(v[0], str)
            and isinstance(v[1], int) and isinstance(v[2], int) and not isinstance(v[1], bool))


def _map_k3(v, where):
    if _is_k3_tensor(v):
        return _ref(v, where)
    if isinstance(v, list):
        return [_map_k3(e, where) for e in v]
    if isinstance(v, dict):
        if v.get("class_name") == "__tuple__":
            return [_map_k3(e, where) for e in (v.get("config") or {}).get("value", [])]
        return {k: _map_k3(e, where) for k, e in v.items()}
    return v


def _map_k2_kwargs(v, where):
    if _is_k2_tensor(v):
        return _ref(v, where)
    if isinstance(v, list):
        return [_map_k2_kwargs(e, where) for e in v]
    if isinstance(v, dict):
        return {k: _map_k2_kwargs(e, where) for k, e in v.items()}
    return v


def _parse_node(node, where: str) -> Call:
    if isinstance(node, dict):                        # Keras 3
        args = _map_k3(node.get("args", []), where)
        kwargs = _map_k3(node.get("kwargs", {}) or {}, where)
        return Call(list(args), dict(kwargs))
    if not isinstance(node, list) or not node:
        raise ModelFormatError(f"{where}: an inbound node must be a non-empty list, got {node!r}")
    refs = [_ref(r, where) for r in node]
    kwargs = {}
    for r in node:
        if len(r) > 3 and isinstance(r[3], dict):
            kwargs.update(_map_k2_kwargs(r[3], where))
    return Call([refs[0] if len(refs) == 1 else refs], kwargs)


def _skips_first_node(spec: dict) -> bool:
    """tf_keras' _should_skip_first_node for a nested model config."""
    cls = spec.get("class_name")
    if cls in ("Functional", "Model"):
        return True
    if cls == "Sequential":
        cfg = spec.get("config")
        layers = cfg if isinstance(cfg, list) else (cfg or {}).get("layers", [])
        if not layers:
            return False
        first = layers[0]
        return first.get("class_name") == "InputLayer" or input_shape(first.get("config") or {}) is not None
    return False


def _pairs(value, where) -> list[Ref]:
    if not isinstance(value, list) or not value:
        raise ModelFormatError(f"{where} must be a non-empty list")
    if isinstance(value[0], str):                       # Keras 3: one input as a flat triple
        value = [value]
    return [_ref(v, where) for v in value]


def parse(model_config: dict, keras3: bool | None = None) -> Topology:
    """``{"class_name": ..., "config": ...}`` of a Sequential or functional model."""
    try:
        return _parse(model_config, keras3)
    except (TypeError, KeyError, IndexError, AttributeError, OverflowError) as e:
        raise ModelFormatError(f"malformed layers model config ({type(e).__name__}: {e})"[:400]) from None
    except RecursionError:
        raise ModelFormatError("malformed layers model config: nested too deeply") from None


def _parse(model_config: dict, keras3: bool | None) -> Topology:
    topo = _parse_model(model_config, keras3)
    for spec in topo.layers:
        if not isinstance(spec.name, str) or not isinstance(spec.class_name, str) or not isinstance(spec.config, dict):
            raise ModelFormatError(f"layer {spec.name!r}: needs a string name and class_name and a config object, "
                                   f"got class_name {spec.class_name!r}"[:300])
    return topo


def _parse_model(model_config: dict, keras3: bool | None) -> Topology:
    if not isinstance(model_config, dict):
        raise ModelFormatError("model_config must be an object with class_name and config")
    cls = model_config.get("class_name")
    cfg = model_config.get("config")
    if cls == "Sequential":
        return _sequential(cfg, keras3)
    if cls in ("Functional", "Model"):
        return _functional(cfg, keras3)
    raise ModelFormatError(f"model class {cls!r} is not a Sequential or functional model "
                           f"(subclassed Keras models have no config to rebuild them from)")


def _looks_keras3(layers) -> bool:
    for spec in layers:
        nodes = spec.get("inbound_nodes") or []
        if any(isinstance(n, dict) for n in nodes):
            return True
        cfg = spec.get("config") or {}
        if isinstance(cfg.get("dtype"), dict) or "batch_shape" in cfg:
            return True
    return False


def _functional(cfg: dict, keras3: bool | None) -> Topology:
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ModelFormatError("a functional model config needs a 'layers' list")
    raw = cfg["layers"]
    if keras3 is None:
        keras3 = _looks_keras3(raw)
    layers, seen = [], set()
    for i, spec in enumerate(raw):
        name = spec.get("name") or (spec.get("config") or {}).get("name")
        where = f"layer {i} ({name})"
        if not name or not spec.get("class_name"):
            raise ModelFormatError(f"{where}: needs a name and a class_name")
        if name in seen:
            raise ModelFormatError(f"two layers are named {name!r}")
        seen.add(name)
        calls = [_parse_node(n, where) for n in (spec.get("inbound_nodes") or [])]
        if not keras3 and _skips_first_node(spec):
            calls = [None] + calls
        layers.append(LayerSpec(name, spec["class_name"], spec.get("config") or {}, calls))
    topo = Topology(cfg.get("name") or "model", layers, _pairs(cfg.get("input_layers"), "input_layers"),
                    _pairs(cfg.get("output_layers"), "output_layers"), keras3)
    names = {s.name for s in layers}
    for r in topo.inputs + topo.outputs:
        if r.layer not in names:
            raise ModelFormatError(f"model input/output refers to unknown layer {r.layer!r}")
    return topo


def _sequential(cfg, keras3: bool | None) -> Topology:
    if isinstance(cfg, list):                           # Keras <= 2.2: the layer list itself
        cfg = {"layers": cfg}
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list) or not cfg["layers"]:
        raise ModelFormatError("a Sequential config needs a non-empty 'layers' list")
    raw = list(cfg["layers"])
    if keras3 is None:
        keras3 = _looks_keras3(raw)
    name = cfg.get("name") or "sequential"
    first = raw[0]
    if first.get("class_name") == "InputLayer":
        inp = dict(first.get("config") or {})
        raw = raw[1:]
    else:
        fcfg = first.get("config") or {}
        shape = input_shape(fcfg)
        if shape is None and cfg.get("build_input_shape") is not None:
            shape = tuple(cfg["build_input_shape"])
        if shape is None:
            raise ModelFormatError(f"Sequential model {name!r} declares no input shape (no InputLayer, no "
                                   "batch_input_shape on its first layer): it cannot be built")
        inp = {"batch_input_shape": list(shape), "dtype": dtype_name(fcfg.get("dtype")),
               "name": f"{fcfg.get('name', 'layer')}_input"}
    inp.setdefault("name", f"{name}_input")
    layers = [LayerSpec(inp["name"], "InputLayer", inp, [])]
    prev = Ref(inp["name"], 0, 0)
    for i, spec in enumerate(raw):
        lname = (spec.get("config") or {}).get("name") or spec.get("name") or f"layer_{i}"
        layers.append(LayerSpec(lname, spec.get("class_name"), spec.get("config") or {}, [Call([prev], {})]))
        prev = Ref(lname, 0, 0)
    if len({s.name for s in layers}) != len(layers):
        raise ModelFormatError(f"Sequential model {name!r} has two layers with the same name")
    return Topology(name, layers, [Ref(inp["name"], 0, 0)], [prev], keras3)


def refs_in(value) -> list[Ref]:
    """Every Ref inside a call argument structure."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in refs_in(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    return []


def resolve(value, env: dict):
    """A call argument structure with each Ref replaced by its tensor from ``env``."""
    if isinstance(value, Ref):
        return env[value]
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, env) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    return value


def execution_order(topo: Topology) -> list[tuple[LayerSpec, int, Call]]:
    """Every (layer, call index, call) in an order where each call's inputs already exist."""
    pending = [(spec, k, call) for spec in topo.layers for k, call in enumerate(spec.calls) if call is not None]
    ready = {r for r in topo.inputs}
    inputs = {r.layer for r in topo.inputs}
    for spec in topo.layers:
        if spec.class_name == "InputLayer" and spec.name not in inputs:
            ready.add(Ref(spec.name, 0, 0))
    produced_layers = {(r.layer, r.node) for r in ready}
    order = []
    while pending:
        rest = []
        for item in pending:
            spec, k, call = item
            if all((r.layer, r.node) in produced_layers for r in refs_in(call.args) + refs_in(call.kwargs)):
                order.append(item)
                produced_layers.add((spec.name, k))
            else:
                rest.append(item)
        if len(rest) == len(pending):
            missing = sorted({f"{r.layer}[{r.node}]" for _, _, c in rest for r in refs_in(c.args) + refs_in(c.kwargs)
                              if (r.layer, r.node) not in produced_layers})
            raise ModelFormatError(f"model {topo.name!r}: calls of {', '.join(s.name for s, _, _ in rest[:5])} "
                                   f"need tensors nothing produces: {', '.join(missing[:8])}")
        pending = rest
    return order
