"""A functional (or Sequential) Keras model as a graph of layer calls; also usable as a layer
inside another model (nested models)."""
from __future__ import annotations

import numpy as np

from ..dtypes import layer_input_dtype, numpy_dtype
from ..errors import InputError, ModelFormatError
from .base import Layer, layer_class, register, unknown_layer
from .topology import Ref, Topology, dtype_name, execution_order, input_shape, parse, resolve

# call kwargs that say how Keras called a layer while building, not what it computes
_IGNORED_KWARGS = {"training", "mask"}


@register("InputLayer")
class InputLayer(Layer):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        shape = input_shape(self.config)
        if shape is None:
            raise ModelFormatError(f"InputLayer {self.name!r} declares no shape")
        if self.config.get("sparse") or self.config.get("ragged"):
            raise ModelFormatError(f"InputLayer {self.name!r}: sparse and ragged inputs are not supported")
        self.batch_shape = tuple(None if d is None or d < 0 else int(d) for d in shape)
        self.dtype = dtype_name(self.config.get("dtype"))
        self.built = True

    def call(self, ctx, x):
        return x


def make_layer(class_name: str, config: dict, flavor: str, name: str) -> Layer:
    cls = layer_class(class_name)
    if cls is None:
        raise unknown_layer(class_name, name)
    layer = cls(config, flavor, class_name)
    layer.name = name
    return layer


@register("Functional", "Model", "Sequential")
class Functional(Layer):
    """Layers wired by a topology. Called with one tensor per model input; returns one tensor
    per model output (a single tensor when there is one)."""

    def __init__(self, config=None, flavor="tf_keras", class_name=None, topology: Topology | None = None):
        super().__init__(config if topology is None else {"name": topology.name}, flavor, class_name)
        if topology is None:
            topology = parse({"class_name": class_name or "Functional", "config": self.config})
        self.topology = topology
        self.name = self.config.get("name") or topology.name
        self.layer_map: dict[str, Layer] = {}
        for spec in topology.layers:
            cfg = spec.config if isinstance(spec.config, dict) else {"layers": spec.config}   # old Sequential: a list
            self.layer_map[spec.name] = make_layer(spec.class_name, {**cfg, "name": spec.name}, flavor, spec.name)
        self.layers = [l for l in self.layer_map.values()]
        self.sublayers = [l for l in self.layers if not isinstance(l, InputLayer)]
        self.order = execution_order(topology)
        self.input_layers = []
        for r in topology.inputs:
            layer = self.layer_map[r.layer]
            if not isinstance(layer, InputLayer):
                raise ModelFormatError(f"model input {r.layer!r} is a {layer.class_name}, not an InputLayer")
            self.input_layers.append(layer)
        self.call_shapes: dict[tuple[str, int], list] = {}   # (layer, call) -> output shapes (traced)
        self.built = True

    @property
    def input_names(self) -> list[str]:
        return [l.name for l in self.input_layers]

    @property
    def output_names(self) -> list[str]:
        return [r.layer for r in self.topology.outputs]

    def call(self, ctx, *inputs, **kwargs):
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) and len(self.input_layers) > 1:
            inputs = tuple(inputs[0])
        if len(inputs) != len(self.input_layers):
            raise InputError(f"model {self.name!r} takes {len(self.input_layers)} inputs, got {len(inputs)}")
        env = {}
        for r, x in zip(self.topology.inputs, inputs):
            env[r] = x
        for spec, k, call in self.order:
            layer = self.layer_map[spec.name]
            args = resolve(call.args, env)
            kw = {key: v for key, v in resolve(call.kwargs, env).items() if key not in _IGNORED_KWARGS}
            out = layer(ctx, *args, **kw)
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
            for i, t in enumerate(outs):
                env[Ref(spec.name, k, i)] = t
            self.call_shapes[(spec.name, k)] = [tuple(ctx.shape(t)) for t in outs]
        missing = [r for r in self.topology.outputs if r not in env]
        if missing:
            raise ModelFormatError(f"model {self.name!r}: output {missing[0]} is never computed")
        outs = [env[r] for r in self.topology.outputs]
        return outs[0] if len(outs) == 1 else outs

    def example_inputs(self, batch: int = 2) -> list[np.ndarray]:
        """Zeros shaped like the model inputs (unknown dims: 1 -- set them with real data)."""
        out = []
        for l in self.input_layers:
            shape = [batch] + [1 if d is None else d for d in l.batch_shape[1:]]
            out.append(np.zeros(shape, numpy_dtype(layer_input_dtype(l.dtype))))
        return out
