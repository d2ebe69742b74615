"""docs/ops.md is generated from the registry (tools/gen_ops_doc.py): it must match a fresh
generation, so an op added without regenerating the docs is caught here."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_ops_doc", ROOT / "tools" / "gen_ops_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ops_doc_is_up_to_date():
    gen = _generator()
    fresh = gen.render()
    current = gen.DOC.read_text()
    assert current == fresh, "docs/ops.md is out of date: run .venv/bin/python tools/gen_ops_doc.py"


def test_ops_doc_covers_every_registry_op_and_kernel():
    from wgpu_runtime.ops import REGISTRY

    text = (ROOT / "docs" / "ops.md").read_text()
    rows = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")}
    assert set(REGISTRY) <= rows
    for kernel in sorted(p.name for p in (ROOT / "kernels").glob("*.wgsl")):
        assert f"`{kernel}`" in text, f"kernels/{kernel} is neither dispatched by an op nor included"


def _api_generator():
    spec = importlib.util.spec_from_file_location("gen_api_doc", ROOT / "tools" / "gen_api_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_doc_is_up_to_date_and_every_public_function_has_a_docstring():
    """docs/api.md is generated from the public API's docstrings (tools/gen_api_doc.py): every
    public function, method, property and class has a docstring, and the file matches a fresh
    generation."""
    gen = _api_generator()
    missing = gen.missing_docstrings()
    assert not missing, f"public API without a docstring ({len(missing)}): " + ", ".join(missing)
    assert gen.DOC.read_text() == gen.render(), "docs/api.md is out of date: run .venv/bin/python tools/gen_api_doc.py"
    names = {name.rsplit(".", 1)[-1] for name, _ in gen.documented_objects()}
    import wgpu_runtime

    assert set(wgpu_runtime.__all__) - {"optimizers", "losses", "metrics", "callbacks"} <= names
