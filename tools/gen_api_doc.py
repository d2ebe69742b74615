#!/usr/bin/env python
"""Generate docs/api.md, the API reference, from the public API's signatures and docstrings.

What is public: ``wgpu_runtime.__all__`` (its functions; the classes GraphModel, LayersModel and
Layer with their public methods and properties; the error classes), and the classes and
functions of ``wgpu_runtime.optimizers``, ``losses``, ``metrics`` and ``callbacks``. A subclass
lists only what it adds: a method overriding a documented base method is described at the base.

    .venv/bin/python tools/gen_api_doc.py            # rewrite docs/api.md
    .venv/bin/python tools/gen_api_doc.py --check    # exit 1 when docs/api.md is out of date
                                                     # or a public function lacks a docstring

Needs only the runtime (no TensorFlow, no GPU).
"""
from __future__ import annotations

import argparse
import difflib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
SUBMODULES = ("optimizers", "losses", "metrics", "callbacks")


# ------------------------------------------------------------------------------- the public API
def _public(name: str) -> bool:
    return not name.startswith("_")


def _package():
    sys.path.insert(0, str(ROOT))
    import wgpu_runtime

    return wgpu_runtime


def _members(cls) -> list[tuple[str, object]]:
    """(name, function or property) defined in ``cls`` itself, in source order: public names and
    ``__call__``; an override of a method some base (other than object) defines is left out."""
    out = []
    for name, value in vars(cls).items():
        if not (_public(name) or name == "__call__"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
            if value.__name__ != name:       # an alias of a function documented by its own name
                continue
        if not (inspect.isfunction(value) or isinstance(value, property)):
            continue
        if any(name in vars(base) for base in cls.__mro__[1:] if base is not object):
            continue
        out.append((name, value))
    return out


def _module_items(module) -> tuple[list, list]:
    """The public classes and functions a module defines (not imports), in source order."""
    classes, functions = [], []
    for name, value in vars(module).items():
        if not _public(name) or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value):
            classes.append(value)
        elif inspect.isfunction(value):
            functions.append(value)
    return classes, functions


def api() -> dict:
    """The public API as sections: {"functions": [...], "classes": [...], "modules": {name: (classes,
    functions)}, "errors": [...]}."""
    wr = _package()
    objs = [getattr(wr, n) for n in wr.__all__]
    errors = [o for o in objs if inspect.isclass(o) and issubclass(o, BaseException)]
    errors.sort(key=lambda c: inspect.getsourcelines(c)[1])
    return {"functions": [o for o in objs if inspect.isfunction(o)],
            "classes": [o for o in objs if inspect.isclass(o) and o not in errors],
            "modules": {n: _module_items(getattr(wr, n)) for n in SUBMODULES},
            "errors": errors}


def documented_objects() -> list[tuple[str, object]]:
    """(qualified name, object) for everything docs/api.md describes."""
    a = api()
    out = [(_qualname(f), f) for f in a["functions"]]
    for cls in a["classes"]:
        out.append((_qualname(cls), cls))
        out += [(f"{_qualname(cls)}.{n}", m) for n, m in _members(cls)]
    for classes, functions in a["modules"].values():
        for cls in classes:
            out.append((_qualname(cls), cls))
            out += [(f"{_qualname(cls)}.{n}", m) for n, m in _members(cls)]
        out += [(_qualname(f), f) for f in functions]
    out += [(_qualname(e), e) for e in a["errors"]]
    return out


def missing_docstrings() -> list[str]:
    """Qualified names of public functions, methods, properties and classes without a docstring
    (an inherited docstring counts, as ``inspect.getdoc`` finds it)."""
    missing = []
    for name, obj in documented_objects():
        target = obj.fget if isinstance(obj, property) else obj
        if not (inspect.getdoc(target) or "").strip():
            missing.append(name)
    return missing


def _qualname(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


# -------------------------------------------------------------------------------------- render
def _annotation(a) -> str:
    if a is inspect.Parameter.empty:
        return ""
    return a if isinstance(a, str) else inspect.formatannotation(a)


def signature(fn, drop_self: bool = False) -> str:
    """``(a, b: int = 1, *args, c=None) -> str``, annotations as written in the source."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(...)"
    parts, star_done = [], False
    params = list(sig.parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        star_done = star_done or p.kind is p.VAR_POSITIONAL
        ann = _annotation(p.annotation)
        if ann:
            text += f": {ann}"
        if p.default is not p.empty:
            text += f" = {p.default!r}" if ann else f"={p.default!r}"
        parts.append(text)
    ret = _annotation(sig.return_annotation)
    return f"({', '.join(parts)})" + (f" -> {ret}" if ret else "")


def _doc(obj) -> str:
    """The docstring in Markdown: reST roles and double back-quotes become code spans."""
    text = inspect.getdoc(obj.fget if isinstance(obj, property) else obj) or "*(no docstring)*"
    text = re.sub(r":(?:func|class|meth|attr|mod|data|exc):`~?([^`]+)`", lambda m: f"`{m.group(1)}`", text)
    return text.replace("``", "`")


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _heading(level: int, title: str, anchor: str) -> list[str]:
    return [f'<a id="{anchor}"></a>', "", f"{'#' * level} {title}", ""]


def _render_class(cls, prefix: str, level: int) -> tuple[list[str], list[tuple[int, str, str]]]:
    name = f"{prefix}{cls.__name__}"
    bases = [b.__name__ for b in cls.__bases__ if b is not object]
    anchor = _anchor(name)
    lines = _heading(level, f"`{name}`", anchor)
    init = vars(cls).get("__init__")
    inherited_init = next((vars(b)["__init__"] for b in cls.__mro__ if "__init__" in vars(b)), None)
    sig = signature(init or inherited_init, drop_self=True) if inherited_init not in (None, object.__init__) else "()"
    lines += ["```python", f"class {cls.__name__}{sig}" + (f"  # bases: {', '.join(bases)}" if bases else ""),
              "```", "", _doc(cls), ""]
    toc = [(level, name, anchor)]
    for mname, member in _members(cls):
        if isinstance(member, property):
            kind = "property, settable" if member.fset is not None else "property"
            lines += [f"- **`{mname}`** ({kind}): " + _doc(member).replace("\n", "\n  "), ""]
        else:
            shown = f"{mname}{signature(member, drop_self=True)}"
            lines += [f"- **`{shown}`**", "", "  " + _doc(member).replace("\n", "\n  "), ""]
    return lines, toc


def _render_function(fn, prefix: str, level: int) -> tuple[list[str], list[tuple[int, str, str]]]:
    name = f"{prefix}{fn.__name__}"
    anchor = _anchor(name)
    lines = _heading(level, f"`{name}`", anchor)
    lines += ["```python", f"def {fn.__name__}{signature(fn)}", "```", "", _doc(fn), ""]
    return lines, [(level, name, anchor)]


def render() -> str:
    wr = _package()
    a = api()
    body: list[str] = []
    toc: list[tuple[int, str, str]] = []

    def section(title: str, intro: str) -> None:
        anchor = _anchor(title)
        body.extend(_heading(2, title, anchor) + ([intro, ""] if intro else []))
        toc.append((2, title, anchor))

    def add(piece) -> None:
        lines, entries = piece
        body.extend(lines)
        toc.extend(entries)

    section("Functions", "`import wgpu_runtime as wr`; these are `wr.<name>`.")
    for fn in a["functions"]:
        add(_render_function(fn, "wr.", 3))
    section("Models and layers", "")
    for cls in a["classes"]:
        add(_render_class(cls, "wr.", 3))
    for mod in SUBMODULES:
        module = getattr(wr, mod)
        section(f"wr.{mod}", (inspect.getdoc(module) or "").split("\n\n")[0].replace("\n", " "))
        classes, functions = a["modules"][mod]
        for cls in classes:
            add(_render_class(cls, f"wr.{mod}.", 3))
        for fn in functions:
            add(_render_function(fn, f"wr.{mod}.", 3))
    section("Errors", "Every error the package raises on purpose derives from `WgpuRuntimeError` "
                      "(`wgpu_runtime/errors.py`); each message names the file, node, op or input at fault.")
    for err in a["errors"]:
        add(_render_class(err, "wr.", 3))

    head = ["# API reference", "",
            "<!-- Generated by tools/gen_api_doc.py from the docstrings: do not edit by hand; "
            "tests/test_docs.py checks it is up to date. -->", "",
            "The public Python API of `wgpu_runtime` (version-independent: signatures and docstrings as in the "
            "source). The command line is described in the README; the ops in docs/ops.md.", "",
            "## Contents", ""]
    for level, title, anchor in toc:
        head.append(f"{'  ' * (level - 2)}- [{title if level == 2 else f'`{title}`'}](#{anchor})")
    return "\n".join(head + [""] + body).rstrip("\n") + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true",
                   help="exit 1 (with a diff) if docs/api.md is out of date or a public function has no docstring")
    p.add_argument("--out", type=Path, default=DOC)
    args = p.parse_args(argv)
    text = render()
    if args.check:
        status = 0
        missing = missing_docstrings()
        if missing:
            print(f"public API without a docstring ({len(missing)}): {', '.join(missing)}", file=sys.stderr)
            status = 1
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                       str(args.out), "regenerated"))
            print(f"\n{args.out} is out of date: run tools/gen_api_doc.py", file=sys.stderr)
            status = 1
        return status
    tmp = args.out.with_name(f".{args.out.name}.partial")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
