"""Fixtures of models with control flow and data-dependent shapes (see build.py), built by
TensorFlow + the official converter into ``<repo>/.fixtures/dynamic`` (or
``$WGPU_RUNTIME_FIXTURES/dynamic``) on first use, in one subprocess for all that are missing or
stale. A fixture that cannot be built fails the test (FixtureUnavailable): not a pass."""
from __future__ import annotations

from pathlib import Path

import numpy as np

try:
    from tests import fixture_cache as _cache
except ImportError:                       # tests/ itself is on sys.path
    import fixture_cache as _cache

FixtureUnavailable = _cache.FixtureUnavailable

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build.py"
REPO = HERE.parents[1]


def root() -> Path:
    return _cache.cache_root("dynamic")


def ensure(*names: str) -> None:
    """Build every named fixture that is missing or stale (one TensorFlow process)."""
    _cache.ensure_built(root(), names, BUILD, label="dynamic fixtures")


def fixture(name: str) -> tuple[Path, dict[str, np.ndarray], dict[str, tuple[str, np.ndarray]]]:
    """(model folder, inputs by signature key, {output key: (the name to ask the converted model
    for, TensorFlow's output)})."""
    ensure(name)
    path = root() / name
    with np.load(path / "io.npz") as data:
        ins = {k[3:]: data[k] for k in data.files if k.startswith("in:")}
        outs = {k[4:]: (str(data[f"ref:{k[4:]}"]) if f"ref:{k[4:]}" in data.files else k[4:], data[k])
                for k in data.files if k.startswith("out:")}
    return path, ins, outs
