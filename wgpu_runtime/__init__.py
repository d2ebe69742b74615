"""wgpu-runtime: TensorFlow.js-format models on WebGPU (wgpu-py), numpy in and out.

    import wgpu_runtime as wr
    model = wr.load_graph_model("web_model/model.json")
    y = model.predict(x)

    model = wr.load_layers_model("web_model/model.json")        # Keras / TF.js layers models
    model.compile(optimizer=wr.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=3); model.save("tuned/")
"""
from importlib import metadata as _metadata

try:                       # the version lives in pyproject.toml alone
    __version__ = _metadata.version("wgpu-runtime")
except _metadata.PackageNotFoundError:   # a source tree that is not installed
    __version__ = "0+unknown"

from . import callbacks, losses, metrics, optimizers  # noqa: E402
from .device import Device, enumerate_adapters, get_device  # noqa: E402
from .errors import (AdapterError, BindingLimitError, DisposedError, GraphError, InputError,  # noqa: E402
                     KernelCompileError, ModelFormatError, PrecisionError, TensorError, UnsupportedOpError, WgpuRuntimeError)
from .graph.model import GraphModel, load_graph_model  # noqa: E402
from .graph.profile import Profile  # noqa: E402
from .layers import Layer, LayersModel, load_layers_model, register_layer  # noqa: E402
from .loading import load_model  # noqa: E402
from .tensor import Tensor, tensor  # noqa: E402

__all__ = ["load_model", "load_graph_model", "GraphModel", "load_layers_model", "LayersModel", "Layer", "register_layer",
           "optimizers", "losses", "metrics", "callbacks", "get_device", "enumerate_adapters", "AdapterError",
           "GraphError", "InputError", "ModelFormatError", "UnsupportedOpError", "WgpuRuntimeError",
           "Tensor", "tensor", "Device", "DisposedError", "TensorError", "BindingLimitError", "PrecisionError",
           "KernelCompileError", "Profile"]
