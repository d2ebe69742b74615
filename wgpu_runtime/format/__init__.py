"""Reading and writing the TensorFlow.js model format (model.json + weight shards).

Uses only numpy and the standard library.
"""

from .artifacts import ModelArtifacts, load_artifacts, write_artifacts
from .dtypes import DTYPES, from_tf, numpy_dtype
from .nodes import NodeDef, Signature, TensorSpec, decode_attr, decode_attrs
from .weights import QUANTIZATION_DTYPES, decode_weights, dequantize, encode_weights, quantize_weight

__all__ = [
    "DTYPES", "QUANTIZATION_DTYPES", "ModelArtifacts", "NodeDef", "Signature", "TensorSpec",
    "decode_attr", "decode_attrs", "decode_weights", "dequantize", "encode_weights", "from_tf",
    "load_artifacts", "numpy_dtype", "quantize_weight", "write_artifacts",
]
