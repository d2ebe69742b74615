"""Graph nodes, attribute values and signatures as the converter writes them (protobuf JSON)."""

import base64
import binascii
from dataclasses import dataclass, field

from ..errors import ModelFormatError
from ..dtypes import from_tf


@dataclass
class NodeDef:
    """One graph node with its attrs decoded to python values."""
    name: str
    op: str
    inputs: list[str]  # exactly as in the JSON: "x", "n:1", "^ctrl"
    attrs: dict[str, object] = field(default_factory=dict)
    device: str = ""


@dataclass
class TensorSpec:
    """A signature tensor: name like "x:0"; shape with -1 for unknown dims, None for unknown rank."""
    name: str
    dtype: str | None
    shape: tuple[int, ...] | None


@dataclass
class Signature:
    """Signature inputs and outputs keyed by signature key."""
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


def decode_shape(shape: dict) -> tuple[int, ...] | None:
    """TensorShapeProto JSON -> tuple of dims (omitted size = 0), or None for unknown rank."""
    if not isinstance(shape, dict):
        raise ModelFormatError(f"shape must be an object, got {shape!r}")
    if shape.get("unknownRank"):
        return None
    dims = shape.get("dim", [])
    if not isinstance(dims, list) or not all(isinstance(d, dict) for d in dims):
        raise ModelFormatError(f"shape 'dim' must be a list of objects, got {dims!r}"[:200])
    return tuple(_int(d.get("size", 0)) for d in dims)


def _int(v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ModelFormatError(f"expected an integer, got {v!r}")
    try:
        return int(v)
    except ValueError:
        raise ModelFormatError(f"expected an integer, got {v!r}") from None


def _float(v) -> float:
    # protobuf JSON writes non-finite floats as "NaN", "Infinity", "-Infinity"
    if (isinstance(v, (int, float)) and not isinstance(v, bool)) or v in ("NaN", "Infinity", "-Infinity"):
        return float(v)
    raise ModelFormatError(f"expected a float, got {v!r}")


def _bool(v) -> bool:
    if not isinstance(v, bool):
        raise ModelFormatError(f"expected a boolean, got {v!r}")
    return v


def _string(v) -> str | bytes:
    """Base64 (standard or URL-safe, padding optional) -> utf-8 str, or bytes if not utf-8."""
    if not isinstance(v, str):
        raise ModelFormatError(f"expected a base64 string, got {v!r}")
    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError) as e:
        raise ModelFormatError(f"invalid base64 string {v!r}: {e}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _func(v) -> str:
    if not isinstance(v, dict) or not isinstance(v.get("name", ""), str):
        raise ModelFormatError(f"expected a function reference, got {v!r}")
    return v.get("name", "")


_SCALAR = {"type": from_tf, "b": _bool, "f": _float, "i": _int, "s": _string,
           "shape": decode_shape, "func": _func, "tensor": lambda v: v}


def decode_attr(value: dict):
    """Decode one AttrValue JSON object: type -> dtype name, b/f/i/s -> bool/float/int/str (bytes
    if not utf-8), shape -> tuple or None, func -> its name, tensor -> the raw dict, list -> list,
    {} -> None."""
    if not isinstance(value, dict):
        raise ModelFormatError(f"attr value must be an object, got {value!r}")
    if not value:
        return None  # protobuf JSON omitted everything
    if len(value) != 1:
        raise ModelFormatError(f"attr value must have exactly one field, got {sorted(value)}")
    (kind, v), = value.items()
    if kind == "list":
        return _decode_list(v)
    if kind not in _SCALAR:
        raise ModelFormatError(f"unknown attr encoding {kind!r}")
    return _SCALAR[kind](v)


def _decode_list(v) -> list:
    if not isinstance(v, dict):
        raise ModelFormatError(f"attr list must be an object, got {v!r}")
    unknown = set(v) - set(_SCALAR)
    if unknown:
        raise ModelFormatError(f"unknown attr list encoding {sorted(unknown)}")
    items = [(kind, xs) for kind, xs in v.items() if xs]
    if len(items) > 1:
        raise ModelFormatError(f"attr list mixes {[k for k, _ in items]}")
    if not items:
        return []
    kind, xs = items[0]
    if not isinstance(xs, list):
        raise ModelFormatError(f"attr list {kind!r} must be an array, got {xs!r}")
    return [_SCALAR[kind](x) for x in xs]


def decode_attrs(attrs: dict, where: str = "") -> dict[str, object]:
    """Decode a node's `attr` object; errors name `where` (e.g. the node) and the attr."""
    if not isinstance(attrs, dict):
        raise ModelFormatError(f"{where}: attr must be an object, got {type(attrs).__name__}")
    out = {}
    for key, value in attrs.items():
        try:
            out[key] = decode_attr(value)
        except ModelFormatError as e:
            raise ModelFormatError(f"{where}: attr {key!r}: {e}") from None
    return out


def decode_node(raw: dict, where: str = "") -> NodeDef:
    """Decode one `modelTopology.node` entry."""
    if not isinstance(raw, dict):
        raise ModelFormatError(f"{where}: node must be an object, got {type(raw).__name__}")
    name, op = raw.get("name"), raw.get("op")
    if not isinstance(name, str) or not name or not isinstance(op, str) or not op:
        raise ModelFormatError(f"{where}: node needs a string 'name' and 'op', got {name!r}, {op!r}")
    inputs = raw.get("input", [])
    if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
        raise ModelFormatError(f"{where}: node {name!r}: 'input' must be a list of strings")
    attrs = decode_attrs(raw.get("attr", {}), f"{where}: node {name!r} ({op})")
    device = raw.get("device", "")
    if not isinstance(device, str):
        raise ModelFormatError(f"{where}: node {name!r}: 'device' must be a string")
    return NodeDef(name=name, op=op, inputs=list(inputs), attrs=attrs, device=device)


def decode_signature(raw: dict, where: str = "") -> Signature:
    """Decode a SignatureDef JSON object ({inputs, outputs} of TensorInfo)."""
    if not isinstance(raw, dict):
        raise ModelFormatError(f"{where}: signature must be an object")
    return Signature(inputs=_tensor_specs(raw.get("inputs", {}), f"{where} inputs"),
                     outputs=_tensor_specs(raw.get("outputs", {}), f"{where} outputs"))


def _tensor_specs(raw: dict, where: str) -> dict[str, TensorSpec]:
    if not isinstance(raw, dict):
        raise ModelFormatError(f"{where}: must be an object keyed by signature key")
    out = {}
    for key, info in raw.items():
        try:
            shape = info.get("tensorShape")
            if not isinstance(info.get("name", ""), str):
                raise ModelFormatError(f"tensor name must be a string, got {info.get('name')!r}"[:200])
            out[key] = TensorSpec(name=info.get("name", ""), dtype=from_tf(info.get("dtype", "DT_INVALID")),
                                  shape=None if shape is None else decode_shape(shape))
        except (ModelFormatError, AttributeError) as e:
            raise ModelFormatError(f"{where}: {key!r}: {e}") from None
    return out
