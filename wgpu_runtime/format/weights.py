"""Weight bytes: decoded as TF.js decodes them (tfjs-core io_utils.ts), encoded and quantized
as the official converter writes them (tensorflowjs 4.22 write_weights.py, quantization.py)."""

import math
import re

import numpy as np

from ..dtypes import (DTYPES, QUANTIZATION_DTYPES, STRING, dtype_of, quantizable_dtypes, quantized_storage_dtype,
                      storage_dtype, writer_dtype)
from ..errors import ModelFormatError

_STRING_LENGTH_BYTES = 4  # each string element: uint32 LE byte length, then its bytes
MAX_RANK = 32             # more dims than any TF.js kernel takes
MAX_DIM = 2 ** 31 - 1     # TF.js indexes with int32
_SHARD_NAME = re.compile(r"(?:.*/)?group(\d+)-shard(\d+)of(\d+)(?:\.bin)?")


# ---------------------------------------------------------------- decoding

def decode_weights(data, specs: list[dict], where: str = "weights") -> dict[str, np.ndarray]:
    """Cut one group's bytes (bytes-like, or a list of shard bytes to concatenate) into arrays.

    Weights follow each other at exact byte offsets in manifest order; quantized weights are
    dequantized. Returns {name: array}; errors name `where` and the weight.
    """
    buf = memoryview(data if not isinstance(data, (list, tuple)) else b"".join(data)).cast("B")
    checked = [_check_spec(spec, where) for spec in specs]
    seen = set()
    for name, *_ in checked:        # a second weight of one name would silently replace the first
        if name in seen:
            raise ModelFormatError(f"{where}: duplicate weight name {name!r}")
        seen.add(name)
    out, offset = {}, 0
    for i, (name, dtype, shape, quant) in enumerate(checked):
        count = math.prod(shape)
        try:
            if dtype == "string":
                values, offset = _decode_strings(buf, offset, count)
            else:
                stored = _stored_dtype(dtype, quant)
                raw = np.frombuffer(_take(buf, offset, count * stored.itemsize), stored)
                values = dequantize(raw, quant, dtype) if quant is not None else _from_storage(raw, dtype)
                offset += raw.nbytes
        except _Truncated as t:
            expected = t.end + sum(_min_bytes(c) for c in checked[i + 1:])
            strings = any(c[1] == "string" for c in checked[i:])
            raise ModelFormatError(
                f"{where}: truncated: weight {name!r} needs bytes {offset}..{t.end}; expected "
                f"{'at least ' if strings else ''}{expected} bytes, found {len(buf)}") from None
        out[name] = values.reshape(shape)
    if offset != len(buf):
        raise ModelFormatError(f"{where}: the manifest's weights take {offset} bytes, the shards hold "
                               f"{len(buf)}: extra bytes would shift the weights")
    return out


def check_shard_order(paths: list, where: str) -> None:
    """Shards named as the official writer names them (``groupG-shardJofN.bin``) must be listed
    in order, all N of them: another order shifts every weight after the first swapped shard."""
    named = [_SHARD_NAME.fullmatch(p) if isinstance(p, str) else None for p in paths]
    if not paths or not all(named):
        return
    numbers = [int(m.group(2)) for m in named]
    totals = {int(m.group(3)) for m in named}
    if numbers != list(range(1, len(paths) + 1)) or totals != {len(paths)}:
        raise ModelFormatError(f"{where}: shards listed out of order or incomplete: {', '.join(paths)}")


class _Truncated(Exception):
    def __init__(self, end: int):
        self.end = end


def _take(buf: memoryview, start: int, n: int) -> memoryview:
    if start + n > len(buf):
        raise _Truncated(start + n)
    return buf[start:start + n]


def _stored_dtype(dtype: str, quant: dict | None) -> np.dtype:
    return quantized_storage_dtype(quant["dtype"]) if quant is not None else storage_dtype(dtype)


def _min_bytes(checked) -> int:
    _, dtype, shape, quant = checked
    per_value = _STRING_LENGTH_BYTES if dtype == "string" else _stored_dtype(dtype, quant).itemsize
    return math.prod(shape) * per_value


def _from_storage(values: np.ndarray, dtype: str) -> np.ndarray:
    """Copy to a native, aligned, writable array (bool: any non-zero byte is True)."""
    if dtype == "bool":
        return values != 0
    return values.astype(values.dtype.newbyteorder("="))


def _decode_strings(buf: memoryview, offset: int, count: int) -> tuple[np.ndarray, int]:
    out = np.empty(count, dtype=object)
    for k in range(count):
        length = int.from_bytes(_take(buf, offset, _STRING_LENGTH_BYTES), "little")
        raw = bytes(_take(buf, offset + _STRING_LENGTH_BYTES, length))
        offset += _STRING_LENGTH_BYTES + length
        try:
            out[k] = raw.decode("utf-8")
        except UnicodeDecodeError:
            out[k] = raw
    return out, offset


def _check_spec(spec, where: str) -> tuple[str, str, tuple[int, ...], dict | None]:
    if not isinstance(spec, dict):
        raise ModelFormatError(f"{where}: weight entry must be an object, got {spec!r}")
    name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not isinstance(name, str):
        raise ModelFormatError(f"{where}: weight entry without a string 'name': {spec!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIM
                                              for d in shape) or len(shape) > MAX_RANK:
        raise ModelFormatError(f"{where}: weight {name!r}: 'shape' must be a list of at most {MAX_RANK} sizes "
                               f"0..{MAX_DIM}, got {_short(shape)}")
    if dtype not in DTYPES:
        raise ModelFormatError(f"{where}: weight {name!r} has unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    quant = spec.get("quantization")
    if quant is not None:
        _check_quantization(quant, dtype, f"{where}: weight {name!r}")
    return name, dtype, tuple(shape), quant


def _check_quantization(quant, dtype: str, where: str) -> None:
    """The checks TF.js makes before dequantizing."""
    if not isinstance(quant, dict):
        raise ModelFormatError(f"{where}: 'quantization' must be an object, got {quant!r}")
    qdtype = quant.get("dtype")
    if qdtype not in QUANTIZATION_DTYPES:
        raise ModelFormatError(f"{where} has unknown quantization dtype {qdtype!r} "
                               f"(known: {', '.join(QUANTIZATION_DTYPES)})")
    if dtype not in quantizable_dtypes(qdtype):
        raise ModelFormatError(f"{where}: {qdtype} quantization is not supported for dtype {dtype}")
    if qdtype != "float16" and not all(isinstance(quant.get(k), (int, float)) and not isinstance(quant.get(k), bool)
                                       and _finite(quant.get(k)) for k in ("min", "scale")):
        raise ModelFormatError(f"{where}: {qdtype} quantization needs finite numbers 'min' and 'scale', got "
                               f"min {_short(quant.get('min'))}, scale {_short(quant.get('scale'))}")


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:                  # an integer beyond float64
        return False


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def dequantize(values: np.ndarray, quantization: dict, dtype: str = "float32") -> np.ndarray:
    """Dequantize as TF.js does: float32(q*scale + min) computed in float64; for int32 weights
    JS Math.round (halves toward +inf); float16 is a plain cast to float32."""
    if quantization["dtype"] == "float16":
        return np.asarray(values, np.float16).astype(np.float32)
    x = np.asarray(values).astype(np.float64) * float(quantization["scale"]) + float(quantization["min"])
    if dtype == "int32":
        floor = np.floor(x)
        return (floor + (x - floor >= 0.5)).astype(np.int32)
    return x.astype(np.float32)


# ---------------------------------------------------------------- encoding

def quantize_weight(array: np.ndarray, dtype: str) -> tuple[bytes, dict]:
    """Quantize a float32 array as the official converter does; returns (bytes, quantization).

    The quantization dict is the manifest entry's, keys in the converter's order. The
    arithmetic is float64 as in tensorflowjs quantization.py under numpy >= 2.
    """
    x = np.asarray(array)
    if dtype not in QUANTIZATION_DTYPES:
        raise ModelFormatError(f"unknown quantization dtype {dtype!r} (known: {', '.join(QUANTIZATION_DTYPES)})")
    if x.dtype != np.float32:
        raise ModelFormatError(f"only float32 weights are quantized, got {x.dtype}")
    if dtype == "float16":
        return x.astype(quantized_storage_dtype(dtype)).tobytes(), {"dtype": "float16", "original_dtype": "float32"}
    if not np.isfinite(x).all():
        raise ModelFormatError("cannot quantize a weight holding NaN or infinity")
    storage = quantized_storage_dtype(dtype)
    q, lo, scale = _affine_quantize(x, int(np.iinfo(storage).max))
    return (q.astype(storage).tobytes(),
            {"dtype": dtype, "min": lo, "scale": scale, "original_dtype": "float32"})


def _affine_quantize(x: np.ndarray, qmax: int) -> tuple[np.ndarray, float, float]:
    """Range [min, max] over qmax steps, min nudged so 0 is exact when 0 is in range."""
    if x.size == 0:
        return np.zeros(0), 0.0, 1.0
    lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        return np.zeros(x.shape), lo, 1.0
    scale = (hi - lo) / qmax
    if lo <= 0 <= hi:
        zero_point = float(np.round((0 - lo) / scale))  # half to even, as np.round
        lo = -zero_point * scale
        hi = qmax * scale + lo
    return np.round((np.clip(x.astype(np.float64), lo, hi) - lo) / scale), lo, scale


def encode_weights(named_arrays, quantization=None) -> tuple[bytes, list[dict]]:
    """Encode [(name, array), ...] into one group's bytes and its manifest entries.

    As the official writer: float64/int64/float16/complex128 arrays are stored as
    float32/int32/float32/complex64; str/bytes/object arrays as "string". `quantization` is
    None or callable(name) -> "uint8" | "uint16" | "float16" | None; only float32 weights are
    quantized (others are written as they are, as the official writer does).
    """
    chunks, entries = [], []
    for name, array in named_arrays:
        qdtype = quantization(name) if quantization is not None else None
        if qdtype is not None and qdtype not in QUANTIZATION_DTYPES:
            raise ModelFormatError(f"weight {name!r}: unknown quantization dtype {qdtype!r} "
                                   f"(known: {', '.join(QUANTIZATION_DTYPES)})")
        data, entry = _encode_one(name, np.asarray(array), qdtype)
        chunks.append(data)
        entries.append(entry)
    return b"".join(chunks), entries


def _encode_one(name: str, a: np.ndarray, qdtype: str | None) -> tuple[bytes, dict]:
    if dtype_of(a) == STRING:
        return _encode_strings(name, a), {"name": name, "shape": list(a.shape), "dtype": "string"}
    stored, dtype = writer_dtype(a.dtype)
    a = a.astype(stored, copy=False)
    if dtype is None:
        raise ModelFormatError(f"cannot encode weight {name!r}: dtype {a.dtype} is not supported")
    entry = {"name": name, "shape": list(a.shape), "dtype": dtype}
    if qdtype is not None and dtype == "float32":
        try:
            data, entry["quantization"] = quantize_weight(a, qdtype)
        except ModelFormatError as e:
            raise ModelFormatError(f"weight {name!r}: {e}") from None
        return data, entry
    return a.astype(storage_dtype(dtype)).tobytes(), entry


def _encode_strings(name: str, a: np.ndarray) -> bytes:
    parts = []
    for x in a.reshape(-1).tolist():
        if not isinstance(x, (str, bytes)):
            raise ModelFormatError(f"cannot encode weight {name!r}: string tensors hold str or bytes, got {type(x).__name__}")
        raw = x.encode("utf-8") if isinstance(x, str) else x
        parts += [len(raw).to_bytes(_STRING_LENGTH_BYTES, "little"), raw]
    return b"".join(parts)
