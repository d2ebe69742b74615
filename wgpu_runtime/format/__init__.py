"""Reading and writing the TensorFlow.js model format (model.json + weight shards).

Uses only numpy and the standard library. Dtype names and their encodings are in
:mod:`wgpu_runtime.dtypes`.
"""

from .artifacts import ModelArtifacts, load_artifacts, write_artifacts
from .nodes import NodeDef, Signature, TensorSpec, decode_attr, decode_attrs
from .weights import decode_weights, dequantize, encode_weights, quantize_weight

__all__ = [
    "ModelArtifacts", "NodeDef", "Signature", "TensorSpec", "decode_attr", "decode_attrs",
    "decode_weights", "dequantize", "encode_weights", "load_artifacts", "quantize_weight",
    "write_artifacts",
]
