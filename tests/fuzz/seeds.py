"""The seed models every case starts from: a small graph model (Pad before a VALID Conv2D, so the
load-time Pad fold applies; MaxPool, Relu, Mean, MatMul, Softmax) and a small layers model
(Sequential Dense-Dense). Written with wgpu_runtime.format, no TensorFlow needed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from wgpu_runtime.format import write_artifacts

GRAPH_INPUT_SHAPE = (1, 8, 8, 3)
LAYERS_INPUT_SHAPE = (4, 6)
F32 = {"type": "DT_FLOAT"}


def _shape(dims) -> dict:
    return {"shape": {"dim": [{"size": str(d)} for d in dims]}}


def _const(name: str, dtype: str = "DT_FLOAT") -> dict:
    return {"name": name, "op": "Const", "attr": {"dtype": {"type": dtype}, "value": {"tensor": {}}}}


def graph_model(folder: Path, signature: bool = True) -> Path:
    """x[1,8,8,3] -> Pad -> Conv2D(VALID) -> BiasAdd -> MaxPool -> Relu -> Mean -> MatMul -> Softmax."""
    rng = np.random.default_rng(3)
    weights = [("paddings", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),
               ("conv_w", rng.uniform(-1, 1, (3, 3, 3, 4)).astype(np.float32)),
               ("conv_b", rng.uniform(-0.2, 0.2, (4,)).astype(np.float32)),
               ("axes", np.array([1, 2], np.int32)),
               ("dense_w", rng.uniform(-1, 1, (4, 3)).astype(np.float32))]
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": F32, "shape": _shape(GRAPH_INPUT_SHAPE)}},
        _const("paddings", "DT_INT32"), _const("conv_w"), _const("conv_b"), _const("axes", "DT_INT32"),
        _const("dense_w"),
        {"name": "pad", "op": "Pad", "input": ["x", "paddings"], "attr": {"T": F32, "Tpaddings": {"type": "DT_INT32"}}},
        {"name": "conv", "op": "Conv2D", "input": ["pad", "conv_w"],
         "attr": {"T": F32, "padding": {"s": "VkFMSUQ="}, "strides": {"list": {"i": ["1", "1", "1", "1"]}},
                  "dilations": {"list": {"i": ["1", "1", "1", "1"]}}, "data_format": {"s": "TkhXQw=="}}},
        {"name": "bias", "op": "BiasAdd", "input": ["conv", "conv_b"], "attr": {"T": F32, "data_format": {"s": "TkhXQw=="}}},
        {"name": "pool", "op": "MaxPool", "input": ["bias"],
         "attr": {"T": F32, "padding": {"s": "VkFMSUQ="}, "ksize": {"list": {"i": ["1", "2", "2", "1"]}},
                  "strides": {"list": {"i": ["1", "2", "2", "1"]}}, "data_format": {"s": "TkhXQw=="}}},
        {"name": "relu", "op": "Relu", "input": ["pool"], "attr": {"T": F32}},
        {"name": "mean", "op": "Mean", "input": ["relu", "axes"], "attr": {"T": F32, "keep_dims": {"b": False},
                                                                          "Tidx": {"type": "DT_INT32"}}},
        {"name": "dense", "op": "MatMul", "input": ["mean", "dense_w"],
         "attr": {"T": F32, "transpose_a": {"b": False}, "transpose_b": {"b": False}}},
        {"name": "softmax", "op": "Softmax", "input": ["dense"], "attr": {"T": F32}},
        {"name": "Identity", "op": "Identity", "input": ["softmax"], "attr": {"T": F32}},
    ]
    doc = {"format": "graph-model", "generatedBy": "2.19.0", "convertedBy": "fuzz seed",
           "modelTopology": {"node": nodes, "library": {}, "versions": {"producer": 1994}}}
    if signature:
        doc["signature"] = {
            "inputs": {"x": {"name": "x:0", "dtype": "DT_FLOAT",
                             "tensorShape": {"dim": [{"size": str(d)} for d in GRAPH_INPUT_SHAPE]}}},
            "outputs": {"y": {"name": "Identity:0", "dtype": "DT_FLOAT"}}}
    return write_artifacts(folder, doc, [weights], shard_size=100)     # several shards


def layers_model(folder: Path) -> Path:
    """Sequential: x[None, 6] -> Dense(5, relu) -> Dense(3, softmax)."""
    rng = np.random.default_rng(4)
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 6], "dtype": "float32",
                                                      "sparse": False, "name": "x"}},
              {"class_name": "Dense", "config": {"name": "d1", "trainable": True, "dtype": "float32", "units": 5,
                                                 "activation": "relu", "use_bias": True}},
              {"class_name": "Dense", "config": {"name": "d2", "trainable": True, "dtype": "float32", "units": 3,
                                                 "activation": "softmax", "use_bias": True}}]
    doc = {"format": "layers-model", "generatedBy": "keras v2.15.0", "convertedBy": "fuzz seed",
           "modelTopology": {"keras_version": "2.15.0", "backend": "tensorflow",
                             "model_config": {"class_name": "Sequential",
                                              "config": {"name": "seq", "layers": layers}}}}
    weights = [("d1/kernel", rng.uniform(-1, 1, (6, 5)).astype(np.float32)),
               ("d1/bias", rng.uniform(-0.2, 0.2, (5,)).astype(np.float32)),
               ("d2/kernel", rng.uniform(-1, 1, (5, 3)).astype(np.float32)),
               ("d2/bias", rng.uniform(-0.2, 0.2, (3,)).astype(np.float32))]
    return write_artifacts(folder, doc, [weights], shard_size=64)


def graph_input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, GRAPH_INPUT_SHAPE).astype(np.float32)


def layers_input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, LAYERS_INPUT_SHAPE).astype(np.float32)
