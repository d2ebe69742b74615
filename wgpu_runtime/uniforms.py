"""A kernel's uniform block, declared once: the ``struct Params`` of its WGSL source.

The layout (offsets, sizes, padding) is computed from the declaration with WGSL's host-shareable
layout rules (``@align`` / ``@size`` honoured), and values are packed *by name and declared
type*: a missing or unknown field is an error, an ``int`` given for an ``f32`` field is converted
(not reinterpreted), and an integer field refuses a value it cannot hold. A kernel author writes
the fields it needs and no padding; where WebGPU's uniform rules want a 16-byte boundary (an
array element, a nested struct), an ``@align(16)`` says so and naga checks it.

    layout = uniform_layout("unary.wgsl", template)     # parsed once per (kernel, template)
    data = layout.pack({"n": 1024, "alpha": 0.2, "beta": 0.0})
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from .pipelines import render

_STRUCT = re.compile(r"\bstruct\s+(\w+)\s*\{(.*?)\}", re.S)
_COMMENT = re.compile(r"//[^\n]*")
_FIELD = re.compile(r"^((?:@\w+\(\s*\d+\s*\)\s*)*)(\w+)\s*:\s*(.+)$", re.S)
_ATTR = re.compile(r"@(\w+)\(\s*(\d+)\s*\)")
_SHORT_VEC = {"vec2f": "vec2<f32>", "vec3f": "vec3<f32>", "vec4f": "vec4<f32>",
              "vec2u": "vec2<u32>", "vec3u": "vec3<u32>", "vec4u": "vec4<u32>",
              "vec2i": "vec2<i32>", "vec3i": "vec3<i32>", "vec4i": "vec4<i32>"}
_SCALARS = {"u32": "<I", "i32": "<i", "f32": "<f"}
_INT_RANGE = {"u32": (0, 2**32 - 1), "i32": (-2**31, 2**31 - 1)}


class UniformError(ValueError):
    """Values that do not match a kernel's declared uniform struct."""


@dataclass(frozen=True)
class Type:
    kind: str                       # "scalar", "vec", "array", "struct"
    align: int
    size: int
    scalar: str = ""                # u32 / i32 / f32 (scalar, vec)
    count: int = 0                  # vec width, array length
    element: "Type | None" = None   # array element
    fields: tuple = ()              # struct: ((name, offset, Type), ...)
    name: str = ""

    @property
    def stride(self) -> int:        # of an array of this element type
        return -(-self.size // self.align) * self.align


def _round(n: int, align: int) -> int:
    return -(-n // align) * align


def _split_top(body: str) -> list[str]:
    """``body`` split at commas outside ``<...>``."""
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _type(text: str, structs: dict[str, str], where: str) -> Type:
    text = _SHORT_VEC.get(text.strip(), text.strip())
    if text in _SCALARS:
        return Type("scalar", 4, 4, scalar=text)
    m = re.fullmatch(r"vec([234])\s*<\s*(\w+)\s*>", text)
    if m:
        n, scalar = int(m.group(1)), m.group(2)
        if scalar not in _SCALARS:
            raise UniformError(f"{where}: unsupported vector element type {scalar}")
        return Type("vec", 8 if n == 2 else 16, 4 * n, scalar=scalar, count=n)
    m = re.fullmatch(r"array\s*<\s*(.+?)\s*,\s*(\d+)u?\s*>", text, re.S)
    if m:
        elem = _type(m.group(1), structs, where)
        return Type("array", elem.align, elem.stride * int(m.group(2)), count=int(m.group(2)), element=elem)
    if text in structs:
        return _struct(text, structs, where)
    raise UniformError(f"{where}: unsupported uniform field type {text!r}")


def _struct(name: str, structs: dict[str, str], where: str) -> Type:
    fields, offset, align = [], 0, 1
    for decl in _split_top(structs[name]):
        m = _FIELD.match(decl)
        if not m:
            raise UniformError(f"{where}: cannot read field {decl!r} of struct {name}")
        attrs = {k: int(v) for k, v in _ATTR.findall(m.group(1))}
        t = _type(m.group(3), structs, f"{where}, {name}.{m.group(2)}")
        f_align = attrs.get("align", t.align)
        f_size = attrs.get("size", t.size)
        offset = _round(offset, f_align)
        # the uniform address space's rules (naga rejects the shader otherwise): say which field
        if t.kind in ("array", "struct") and offset % 16:
            raise UniformError(f"{where}: uniform field {name}.{m.group(2)} ({t.kind}) starts at byte {offset}, "
                               "not on a 16-byte boundary: declare it @align(16)")
        if t.kind == "array" and t.element.stride % 16:
            raise UniformError(f"{where}: uniform array {name}.{m.group(2)} has a {t.element.stride}-byte stride, "
                               "not a multiple of 16: use 16-byte elements (vec4, or a struct with @align(16))")
        fields.append((m.group(2), offset, t))
        offset += f_size
        align = max(align, f_align)
    return Type("struct", align, _round(offset, align), fields=tuple(fields), name=name)


@dataclass(frozen=True)
class UniformLayout:
    kernel: str
    root: Type

    @property
    def size(self) -> int:
        """Bytes of the uniform buffer (the struct's size, at least 16)."""
        return max(16, _round(self.root.size, 16))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.root.fields)

    def pack(self, values: Mapping[str, object]) -> bytes:
        out = bytearray(self.size)
        _put(out, 0, self.root, values, f"{self.kernel}: Params")
        return bytes(out)


def _put(out: bytearray, offset: int, t: Type, value, where: str) -> None:
    if t.kind == "scalar":
        out[offset: offset + 4] = _scalar(t.scalar, value, where)
    elif t.kind == "vec":
        items = _sequence(value, where)
        if len(items) != t.count:
            raise UniformError(f"{where}: a vec{t.count} needs {t.count} values, got {len(items)}")
        for k, v in enumerate(items):
            out[offset + 4 * k: offset + 4 * k + 4] = _scalar(t.scalar, v, f"{where}[{k}]")
    elif t.kind == "array":
        items = _sequence(value, where)
        if len(items) > t.count:
            raise UniformError(f"{where}: {len(items)} values for an array of {t.count}")
        for k, v in enumerate(items):        # the rest stays zero
            _put(out, offset + k * t.element.stride, t.element, v, f"{where}[{k}]")
    else:
        if not isinstance(value, Mapping):
            raise UniformError(f"{where}: struct {t.name} takes a mapping of its fields, got {type(value).__name__}")
        names = [n for n, _, _ in t.fields]
        missing = [n for n in names if n not in value]
        extra = [n for n in value if n not in names]
        if missing or extra:
            raise UniformError(f"{where}: struct {t.name} has fields {names}"
                               + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else ""))
        for name, off, ft in t.fields:
            _put(out, offset + off, ft, value[name], f"{where}.{name}")


def _sequence(value, where: str) -> list:
    if isinstance(value, np.ndarray):
        return list(value.reshape(-1))
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    raise UniformError(f"{where}: expected a sequence, got {type(value).__name__}")


def _scalar(kind: str, v, where: str) -> bytes:
    if kind == "f32":
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise UniformError(f"{where}: f32 field given {v!r}")
        return struct.pack("<f", float(v))
    if isinstance(v, (float, np.floating)) or not isinstance(v, (int, bool, np.integer, np.bool_)):
        raise UniformError(f"{where}: {kind} field given {v!r} (an integer is needed)")
    lo, hi = _INT_RANGE[kind]
    if not lo <= int(v) <= hi:
        raise UniformError(f"{where}: {int(v)} does not fit a {kind}")
    return struct.pack(_SCALARS[kind], int(v))


def layout_of_source(source: str, where: str = "kernel") -> UniformLayout:
    """The layout of the ``struct Params`` declared in WGSL ``source``."""
    src = _COMMENT.sub("", source)
    structs = {m.group(1): m.group(2) for m in _STRUCT.finditer(src)}
    if "Params" not in structs:
        raise UniformError(f"{where} declares no `struct Params` but was given uniform values")
    return UniformLayout(where, _struct("Params", structs, where))


@lru_cache(maxsize=None)
def _layout(kernel: str, template_items: tuple) -> UniformLayout:
    return layout_of_source(render(kernel, dict(template_items)), kernel)


def uniform_layout(kernel: str, template: dict | None = None) -> UniformLayout:
    """The layout of ``kernels/<kernel>``'s ``struct Params`` (cached per kernel and template)."""
    return _layout(kernel, tuple(sorted((template or {}).items())))


def pack_uniforms(kernel: str, template: dict | None, values: Mapping[str, object]) -> bytes:
    """Bytes of ``kernel``'s uniform buffer holding ``values`` (field name -> value)."""
    return uniform_layout(kernel, template).pack(values)
