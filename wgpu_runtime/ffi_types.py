"""Fill wgpu-py's cffi type cache up front: a faster first inference in a new process.

wgpu-py 0.32 builds every C struct it passes with ``ffi.new("WGPUXxx *")``. cffi turns each type
string into a C type the first time it sees it by running pycparser over a preamble that declares
all ~430 typedefs of wgpu.h: 20-60 ms per distinct string on the development machine, ~40 strings
before a model's first result -- over a second of a new process (docs/benchmarks.md,
2026-12-04). The header is already parsed (``ffi.cdef``), so each type can be built from its
declaration directly; :func:`warm` does that for every typedef (as ``T``, ``T *`` and ``T[]``,
the spellings wgpu-py uses) in ~20 ms and stores the results where cffi's own parse would, so
``ffi.new`` finds them. The C types are the very objects cffi's parse returns (cffi caches them
per declaration); a string not stored here is parsed as before.
"""
from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

_PRIMITIVES = ("char", "int", "float", "double", "size_t", "intptr_t", "uintptr_t", "uint8_t", "uint16_t",
               "uint32_t", "uint64_t", "int8_t", "int16_t", "int32_t", "int64_t")
_done = threading.Event()


def warm() -> int:
    """Pre-build wgpu-py's cffi types (once per process); returns how many strings were added.
    Anything unexpected in cffi's internals leaves the cache as it was (cffi parses as before)."""
    if _done.is_set():
        return 0
    try:
        from cffi import model
        from wgpu.backends.wgpu_native import ffi
    except ImportError:
        return 0
    added = 0
    try:
        decls = ffi._parser._declarations
        named = [(key.split(" ", 1)[1], value[0]) for key, value in list(decls.items()) if key.startswith("typedef ")]
        named += [(n, model.PrimitiveType(n)) for n in _PRIMITIVES]
        with ffi._lock:          # cffi's _get_cached_btype must be called with it held
            cache = ffi._parsed_types
            sample = next((v for k, v in cache.items() if not k.startswith("__")), None)   # wgpu-py parsed some
            if not (isinstance(sample, tuple) and len(sample) == 2 and isinstance(sample[1], bool)):
                raise TypeError("cffi's parsed-type cache has another layout")
            for name, tp in named:
                if getattr(tp, "is_raw_function", False):
                    continue
                try:
                    ctypes = {name: ffi._get_cached_btype(tp),
                              f"{name} *": ffi._get_cached_btype(model.PointerType(tp)),
                              f"{name}[]": ffi._get_cached_btype(model.ArrayType(tp, None))}
                except Exception:  # noqa: BLE001 -- a type cffi cannot build ahead (opaque...): parsed on use
                    continue
                for text, ct in ctypes.items():
                    spellings = (text,) if text == name else (text, text.replace(" *", "*").replace("[]", " []"),
                                                               text + " ")
                    for s in spellings:
                        if s not in cache:
                            cache[s] = (ct, False)
                            added += 1
            if "void *" not in cache:
                cache["void *"] = (ffi._get_cached_btype(model.PointerType(model.void_type)), False)
                added += 1
            added += _callbacks(ffi, cache)
    except Exception as e:  # noqa: BLE001 -- an optimisation only: another cffi / wgpu-py version
        logger.debug("cffi type cache not pre-filled: %s", e)
    _done.set()
    return added


def _callbacks(ffi, cache) -> int:
    """The callback signatures wgpu-py spells out (``ffi.callback("void(...)")``, found in its
    source), parsed in one pycparser run instead of one run each; stored as cffi stores them."""
    import re
    from pathlib import Path

    import wgpu.backends.wgpu_native as native

    texts = set()
    for path in Path(native.__file__).parent.glob("*.py"):
        texts.update(re.findall(r'ffi\.callback\(\s*"([^"]+)"', path.read_text(encoding="utf-8")))
    texts = sorted(t for t in texts if t not in cache)
    if not texts:
        return 0
    parser = ffi._parser
    ast = parser._parse("\n".join(f"void __dummy{i}(\n{t}\n);" for i, t in enumerate(texts)))[0]
    decls = ast.ext[-len(texts):]
    for text, decl in zip(texts, decls):
        tp = parser._get_type_and_quals(decl.type.args.params[0].type)[0]
        raw = tp.is_raw_function
        cache[text] = (ffi._get_cached_btype(tp.as_function_pointer() if raw else tp), raw)
    return len(texts)
