"""Dtype names used across the runtime and their TensorFlow / numpy / byte encodings."""

import numpy as np

from ..errors import ModelFormatError

DTYPES = ("float32", "int32", "bool", "string", "uint8", "float16", "int64", "float64", "complex64")

# TensorFlow DataType enum names in enum order (number = index; "_REF" variants add 100).
_TF_ENUM = (
    "INVALID", "FLOAT", "DOUBLE", "INT32", "UINT8", "INT16", "INT8", "STRING", "COMPLEX64", "INT64",
    "BOOL", "QINT8", "QUINT8", "QINT32", "BFLOAT16", "QINT16", "QUINT16", "UINT16", "COMPLEX128",
    "HALF", "RESOURCE", "VARIANT", "UINT32", "UINT64", "FLOAT8_E5M2", "FLOAT8_E4M3FN",
    "FLOAT8_E4M3FNUZ", "FLOAT8_E4M3B11FNUZ", "FLOAT8_E5M2FNUZ", "INT4", "UINT4",
)
_TF_TO_DTYPE = {"FLOAT": "float32", "DOUBLE": "float64", "HALF": "float16", "INT32": "int32",
                "INT64": "int64", "UINT8": "uint8", "BOOL": "bool", "STRING": "string",
                "COMPLEX64": "complex64"}

# Little-endian storage of each dtype in weight shards ("string" has its own encoding).
_STORAGE = {"float32": "<f4", "int32": "<i4", "bool": "u1", "uint8": "u1", "float16": "<f2",
            "int64": "<i8", "float64": "<f8", "complex64": "<c8"}
_NUMPY = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8,
          "float16": np.float16, "int64": np.int64, "float64": np.float64,
          "complex64": np.complex64, "string": np.object_}


def from_tf(value) -> str | None:
    """Map a TF DataType ("DT_FLOAT", "DT_FLOAT_REF" or its enum number) to a dtype name.

    Types outside DTYPES map to their lower-case TF name ("resource", "int8", "bfloat16");
    DT_INVALID (the protobuf default) maps to None.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value % 100 < len(_TF_ENUM):
        name = _TF_ENUM[value % 100]
    elif isinstance(value, str) and value.startswith("DT_"):
        name = value[3:].removesuffix("_REF")
    else:
        raise ModelFormatError(f"unknown TensorFlow dtype {value!r}")
    if name == "INVALID":
        return None
    return _TF_TO_DTYPE.get(name, name.lower())


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype holding values of `dtype` ("string" -> object)."""
    if dtype not in _NUMPY:
        raise ModelFormatError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    return np.dtype(_NUMPY[dtype])


def storage_dtype(dtype: str) -> np.dtype:
    """The little-endian numpy dtype of `dtype` in a weight shard (not for "string")."""
    if dtype not in _STORAGE:
        numpy_dtype(dtype)  # raises for unknown names
        raise ModelFormatError(f"dtype {dtype!r} has no fixed-size storage")
    return np.dtype(_STORAGE[dtype])
