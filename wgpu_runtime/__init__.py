"""wgpu-runtime: TensorFlow.js-format models on WebGPU (wgpu-py), numpy in and out.

    import wgpu_runtime as wr
    model = wr.load_graph_model("web_model/model.json")
    y = model.predict(x)
"""
from .device import enumerate_adapters, get_device
from .errors import (AdapterError, GraphError, InputError, ModelFormatError, UnsupportedOpError,
                     WgpuRuntimeError)
from .graph.model import GraphModel, load_graph_model

__version__ = "0.1.0"
__all__ = ["load_graph_model", "GraphModel", "get_device", "enumerate_adapters", "AdapterError",
           "GraphError", "InputError", "ModelFormatError", "UnsupportedOpError", "WgpuRuntimeError"]
