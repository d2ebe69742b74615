"""Every dtype table of the runtime, and every conversion between dtype names, numpy types and
device bytes. No other module keeps one.

Names are the TensorFlow.js format's ("float32", "int32", "bool", "string"...). A tensor on the GPU
is "float32" (f32), "int32" (i32) or "bool" (u32 0/1), each element 4 bytes; wider or other host
dtypes are narrowed as TF.js narrows them (float64/float16 -> float32, int64/uint8 -> int32).
"string" and "complex64" tensors live on the host only.

Sections: dtype names; TensorFlow DataType enum; numpy types and weight-shard storage (the file
format); quantization; device storage (narrowing, WGSL types, bytes); the dtype of a numpy array
and host arrays as the runtime holds them; Keras layers configs.
"""
from __future__ import annotations

import numpy as np

from .errors import ModelFormatError

# -------------------------------------------------------------------------------- names
FLOAT32, INT32, BOOL, STRING, COMPLEX64 = "float32", "int32", "bool", "string", "complex64"

# every dtype a TF.js model file may hold
DTYPES = ("float32", "int32", "bool", "string", "uint8", "float16", "int64", "float64", "complex64")
DEVICE_DTYPES = (FLOAT32, INT32, BOOL)          # the dtypes a GPU tensor can have
HOST_ONLY = frozenset({STRING, COMPLEX64})      # tensor dtypes no kernel takes


def is_integer(dtype: str) -> bool:
    """Whether a dtype name is an integer type ("int8".."int64", "uint8".."uint64")."""
    return dtype.startswith(("int", "uint"))


# -------------------------------------------------------------------- TensorFlow DataType
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


def from_tf(value) -> str | None:
    """Map a TF DataType ("DT_FLOAT", "DT_FLOAT_REF" or its enum number) to a dtype name.

    Types outside DTYPES map to their lower-case TF name ("resource", "int8", "bfloat16");
    DT_INVALID (the protobuf default) maps to None.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value % 100 < len(_TF_ENUM):
        name = _TF_ENUM[value % 100]
    elif isinstance(value, str) and value.startswith("DT_"):
        name = value[3:].removesuffix("_REF")
        if name not in _TF_ENUM:
            raise ModelFormatError(f"unknown TensorFlow dtype {value!r}")
    else:
        raise ModelFormatError(f"unknown TensorFlow dtype {value!r}")
    if name == "INVALID":
        return None
    return _TF_TO_DTYPE.get(name, name.lower())


# ------------------------------------------------------- numpy types, weight-shard storage
# Little-endian storage of each dtype in weight shards ("string" has its own encoding).
_STORAGE = {"float32": "<f4", "int32": "<i4", "bool": "u1", "uint8": "u1", "float16": "<f2",
            "int64": "<i8", "float64": "<f8", "complex64": "<c8"}
_NUMPY = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8,
          "float16": np.float16, "int64": np.int64, "float64": np.float64,
          "complex64": np.complex64, "string": np.object_}
# The official writer converts these before writing (write_weights._AUTO_DTYPE_CONVERSION),
# then stores the others under their names.
_WRITER_NARROW = {np.dtype(np.float16): np.float32, np.dtype(np.float64): np.float32,
                  np.dtype(np.int64): np.int32, np.dtype(np.complex128): np.complex64}
_ENCODABLE = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32", np.dtype(np.bool_): "bool",
              np.dtype(np.uint8): "uint8", np.dtype(np.complex64): "complex64"}


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


def writer_dtype(array_dtype) -> tuple[np.dtype, str | None]:
    """How the official writer stores an array of numpy dtype `array_dtype` (not str/object):
    (the numpy dtype it converts the array to, the manifest dtype name or None when the format
    has no such dtype). float64/float16 -> float32, int64 -> int32, complex128 -> complex64."""
    array_dtype = np.dtype(array_dtype)
    target = np.dtype(_WRITER_NARROW.get(array_dtype, array_dtype))
    return target, _ENCODABLE.get(target)


# ----------------------------------------------------------------------------- quantization
QUANTIZATION_DTYPES = ("uint8", "uint16", "float16")
_QUANTIZED_STORAGE = {"uint8": "u1", "uint16": "<u2", "float16": "<f2"}
# the weight dtypes TF.js dequantizes from each (float16: float32 weights only)
_QUANTIZABLE = {"uint8": ("float32", "int32"), "uint16": ("float32", "int32"), "float16": ("float32",)}


def quantized_storage_dtype(qdtype: str) -> np.dtype:
    """The little-endian numpy dtype of a weight quantized to `qdtype` (one of QUANTIZATION_DTYPES)."""
    return np.dtype(_QUANTIZED_STORAGE[qdtype])


def quantizable_dtypes(qdtype: str) -> tuple[str, ...]:
    """The weight dtypes a `qdtype` quantization may hold (TF.js rejects others)."""
    return _QUANTIZABLE[qdtype]


def quantization_dtype(nbytes: int) -> str:
    """The affine quantization dtype of `nbytes` bytes a value: 1 -> "uint8", 2 -> "uint16"."""
    for qdtype in QUANTIZATION_DTYPES:
        storage = quantized_storage_dtype(qdtype)
        if storage.kind == "u" and storage.itemsize == nbytes:
            return qdtype
    raise ValueError(f"no affine quantization stores values in {nbytes} bytes")


# --------------------------------------------------------------------------- device storage
WGSL_TYPE = {"float32": "f32", "int32": "i32", "bool": "u32"}
_DEVICE_NP = {"float32": np.float32, "int32": np.int32, "bool": np.uint32}
# dtypes stored on the host in a wider or other form, narrowed as TF.js does
_NARROW = {"int64": "int32", "float64": "float32", "uint8": "int32", "float16": "float32"}
# numpy dtypes an input tensor of each device dtype accepts (converted to it on the way in)
_FEEDABLE = {"float32": ("float16", "float32", "float64"),
             "int32": ("int8", "int16", "int32", "int64", "uint8", "uint16"),
             "bool": ("bool",)}


def device_dtype(dtype: str) -> str:
    """The dtype a tensor of `dtype` has at run time (int64/uint8 -> int32, float64/float16 ->
    float32; others unchanged)."""
    return _NARROW.get(dtype, dtype)


def wgsl_type(dtype: str) -> str:
    """The WGSL scalar type of a tensor of `dtype` in a storage buffer: f32, i32 or u32 (bool)."""
    return WGSL_TYPE[device_dtype(dtype)]


def feedable(dtype: str, array_dtype) -> bool:
    """Whether an array of numpy dtype `array_dtype` may feed an input of (device) dtype `dtype`."""
    return str(np.dtype(array_dtype)) in _FEEDABLE.get(dtype, (dtype,))


def to_device_array(value: np.ndarray, dtype: str) -> np.ndarray:
    """The bytes a tensor of ``dtype`` has on the GPU."""
    dtype = device_dtype(dtype)
    if dtype not in _DEVICE_NP:
        raise TypeError(f"dtype {dtype} cannot live on the GPU")
    # np.require, not np.ascontiguousarray: the latter turns a 0-d array into shape (1,)
    return np.require(np.asarray(value).astype(_DEVICE_NP[dtype], copy=False), requirements="C")


def from_device_array(arr: np.ndarray, dtype: str) -> np.ndarray:
    """The host value of a tensor from its device-layout array (bool: u32 0/1 -> bool; others
    as they are, not copied)."""
    return arr.astype(bool) if device_dtype(dtype) == BOOL else arr


def from_device_bytes(data, dtype: str, shape) -> np.ndarray:
    """A tensor's host value (a new array) from the bytes it has on the GPU."""
    dtype = device_dtype(dtype)
    arr = np.frombuffer(data, dtype=_DEVICE_NP[dtype], count=int(np.prod(shape, dtype=np.int64)))
    arr = arr.reshape(shape)
    return arr.astype(bool) if dtype == BOOL else arr.copy()


# ------------------------------------------------------------------- arrays on the host
def dtype_of(a) -> str:
    """The dtype of the runtime tensor holding array `a`: "bool"; "string" for object, str and
    bytes arrays; "complex64" for complex; "int32" for any integer; "float32" otherwise."""
    kind = np.asarray(a).dtype.kind
    if kind == "b":
        return BOOL
    if kind in "OUS":
        return STRING
    if kind == "c":
        return COMPLEX64
    return INT32 if kind in "iu" else FLOAT32


def host_array(v) -> np.ndarray:
    """`v` as a runtime tensor holds it on the host: integers as int32, floats as float32 (as TF.js
    stores them), str/bytes arrays as object arrays; bool, object and complex arrays unchanged."""
    a = np.asarray(v)
    kind = a.dtype.kind
    if kind in "US":
        return a.astype(object)
    if kind in "iu":
        return a.astype(np.int32, copy=False)
    if kind == "f":
        return a.astype(np.float32, copy=False)
    return a                     # bool, object; complex: host-only (FFT family)


def host_numpy_dtype(dtype: str, default=np.object_) -> np.dtype:
    """The numpy dtype of a host array of a device dtype (bool -> bool); `default` for any other
    dtype (string, complex64, or an opaque handle's "variant" / "resource")."""
    return numpy_dtype(dtype) if dtype in DEVICE_DTYPES else np.dtype(default)


# ------------------------------------------------------------------------- Keras layers
def policy_dtype(name: str) -> str:
    """The variable dtype of a Keras dtype (policy) name: a mixed policy ("mixed_float16")
    keeps float32 variables, and TF.js computes in float32."""
    return FLOAT32 if name.startswith("mixed_") else name


def layer_input_dtype(dtype: str) -> str:
    """The dtype a layers model's input declared `dtype` is fed as: "int32" for "int*" dtypes,
    "float32" for every other."""
    return INT32 if dtype.startswith("int") else FLOAT32
