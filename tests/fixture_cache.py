"""The cache shared by the test-fixture packages (tests/fixtures, tests/fixtures_dynamic,
tests/fixtures_layers.py): a fixture is a folder under ``<repo>/.fixtures`` (or
``$WGPU_RUNTIME_FIXTURES``) that is complete when its ``.complete`` marker holds the builder
script's version (the first 16 hex digits of the script's sha256, so a changed builder rebuilds).
Missing or stale fixtures are built by the builder script in ONE subprocess, under a lock file
that serialises concurrent test processes; the builder writes each folder in a scratch folder
and renames it into place, marker last. A builder exits with EXIT_NO_TENSORFLOW when it cannot
import TensorFlow / tensorflowjs: that is FixtureUnavailable (the test fails; not a pass)."""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPLETE = ".complete"
EXIT_NO_TENSORFLOW = 3

__all__ = ["FixtureUnavailable", "cache_root", "script_version", "is_complete", "builder_python",
           "build_lock", "ensure_built", "COMPLETE", "EXIT_NO_TENSORFLOW"]


class FixtureUnavailable(RuntimeError):
    """The fixture is not built and cannot be (TensorFlow / tensorflowjs missing)."""


def cache_root(sub: str = "") -> Path:
    """``$WGPU_RUNTIME_FIXTURES`` or ``<repo>/.fixtures``, then ``sub`` (when given)."""
    env = os.environ.get("WGPU_RUNTIME_FIXTURES")
    root = Path(env) if env else REPO_ROOT / ".fixtures"
    return root / sub if sub else root


def script_version(script: Path) -> str:
    """What the builder writes into ``.complete``: the hash of the builder script itself."""
    return hashlib.sha256(Path(script).read_bytes()).hexdigest()[:16]


def is_complete(folder: Path, version: str) -> bool:
    try:
        return (folder / COMPLETE).read_text().strip() == version
    except OSError:
        return False


def builder_python(prefer_running: bool = True) -> str:
    """The interpreter that runs a builder: this one when it can import tensorflowjs (and
    ``prefer_running``), else ``<repo>/.venv/bin/python``, else this one."""
    if prefer_running and importlib.util.find_spec("tensorflowjs") is not None:
        return sys.executable
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@contextlib.contextmanager
def build_lock(folder: Path):
    """An exclusive lock on ``folder/.build.lock`` (creating ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "w") as fh:
        try:
            import fcntl
        except ImportError:               # not POSIX: no lock, the builder's rename still guards
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_built(root: Path, names, script: Path, *, label: str = "fixtures",
                 prefer_running: bool = True, env: dict | None = None) -> dict[str, Path]:
    """Build every named fixture under ``root`` that is missing or stale, by running
    ``<python> script --out root <missing...>`` once; {name: folder}."""
    version = script_version(script)
    missing = [n for n in names if not is_complete(root / n, version)]
    if missing:
        with build_lock(root):
            missing = [n for n in missing if not is_complete(root / n, version)]
            if missing:
                cmd = [builder_python(prefer_running), str(script), "--out", str(root), *missing]
                proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
                if proc.returncode == EXIT_NO_TENSORFLOW:
                    raise FixtureUnavailable(
                        f"{label} {missing} are not built and TensorFlow/tensorflowjs cannot be "
                        f"imported by {cmd[0]} (tools/setup.sh installs them)")
                if proc.returncode != 0:
                    raise RuntimeError(f"building {label} {missing} failed "
                                       f"(exit {proc.returncode}):\n{proc.stdout[-6000:]}")
    bad = [n for n in names if not is_complete(root / n, version)]
    if bad:
        raise RuntimeError(f"{label} {bad} still missing in {root} after a build")
    return {n: root / n for n in names}
