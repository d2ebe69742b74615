"""Fixtures of models with control flow and data-dependent shapes (see build.py), built by
TensorFlow + the official converter into ``<repo>/.fixtures/dynamic`` (or
``$WGPU_RUNTIME_FIXTURES/dynamic``) on first use, in one subprocess for all that are missing or
stale. A fixture that cannot be built fails the test (FixtureUnavailable): not a pass."""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build.py"
REPO = HERE.parents[1]


class FixtureUnavailable(RuntimeError):
    pass


def root() -> Path:
    env = os.environ.get("WGPU_RUNTIME_FIXTURES")
    return (Path(env) if env else REPO / ".fixtures") / "dynamic"


def _version() -> str:
    return hashlib.sha256(BUILD.read_bytes()).hexdigest()[:16]


def _complete(folder: Path) -> bool:
    try:
        return (folder / ".complete").read_text().strip() == _version()
    except OSError:
        return False


def _python() -> str:
    if importlib.util.find_spec("tensorflowjs") is not None:
        return sys.executable
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@contextlib.contextmanager
def _lock(folder: Path):
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure(*names: str) -> None:
    """Build every named fixture that is missing or stale (one TensorFlow process)."""
    folder = root()
    if all(_complete(folder / n) for n in names):
        return
    with _lock(folder):
        missing = [n for n in names if not _complete(folder / n)]
        if not missing:
            return
        proc = subprocess.run([_python(), str(BUILD), "--out", str(folder), *missing],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode == 3:
            raise FixtureUnavailable(f"fixtures {missing} need TensorFlow + tensorflowjs (tools/setup.sh)")
        if proc.returncode != 0 or not all(_complete(folder / n) for n in missing):
            raise RuntimeError(f"building {missing} failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}")


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
