"""Layers models: Keras / TF.js layer topologies as graphs of registry ops -- inference on the GPU
through wgpu_runtime.graph, training on the CPU through wgpu_runtime.autograd.

Importing the package registers the built-in layers (one module per family)."""
from . import attention, conv, core, merge, normalization, pooling, recurrent  # noqa: F401 (registers)
from .base import LAYERS, Layer, Weight, register_layer
from .ctx import Ctx, EagerCtx, GraphCtx
from .functional import Functional, InputLayer
from .model import LayersModel, bind_weights, load_layers_model, model_from_topology

__all__ = ["LAYERS", "Ctx", "EagerCtx", "Functional", "GraphCtx", "InputLayer", "Layer", "LayersModel", "Weight",
           "bind_weights", "load_layers_model", "model_from_topology", "register_layer"]
