"""Layers point one way. Every import in wgpu_runtime/ (at the top of a module or inside a
function) is read from the source, and none may reach a higher layer:

    conformance / bench / CLI / loading  ->  layers, autograd  ->  graph  ->  format, ops  ->  base

(base: errors, dtypes, memory, pipelines, uniforms, device and the other top-level helpers).
The runtime never imports TensorFlow, Keras or the converter (``wgpu_runtime.convert``), except
the CLI's ``convert`` subcommand, which is the converter's entry point."""
import ast
from pathlib import Path

import pytest

import wgpu_runtime

ROOT = Path(wgpu_runtime.__file__).resolve().parent
APPS = {"conformance", "bench", "bench_compare", "__main__", "loading", "plots", "__init__", "tune_cli", "batch", "first_inference", "cli_args"}
MODELS = {"layers", "autograd", "losses", "metrics", "optimizers", "callbacks"}
HIGHER = {  # a part of the runtime -> the parts it must not import
    "ops": APPS | MODELS | {"graph", "format", "models"},
    "format": APPS | MODELS | {"graph", "ops"},
    "graph": APPS | MODELS,
    "autograd": APPS | {"layers", "graph"},
}
BASE_FORBIDDEN = APPS | MODELS | {"graph", "format", "ops", "models"}
FOREIGN = ("tensorflow", "keras", "tf_keras", "tensorflowjs")


def _imports(path: Path):
    """(line, absolute module name) of every import in ``path``."""
    package = ["wgpu_runtime", *path.relative_to(ROOT).parts[:-1]]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            yield node.lineno, name


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0] if len(rel) > 1 else rel[0][:-3]


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if _part(p) not in ("kernels", "convert"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_reaches_a_higher_layer(path):
    part = _part(path)
    forbidden = HIGHER.get(part, set() if part in APPS | MODELS | {"models"} else BASE_FORBIDDEN)
    bad = []
    for line, name in _imports(path):
        top = name.split(".")[0]
        if top in FOREIGN:
            bad.append(f"line {line}: {name} (the runtime imports no TensorFlow)")
        elif name.startswith("wgpu_runtime."):
            target = name.split(".")[1]
            if target == "convert" and part != "__main__":
                bad.append(f"line {line}: {name} (the runtime never imports the converter)")
            elif target != part and target in forbidden:
                bad.append(f"line {line}: {name} ({part} sits below {target})")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)
