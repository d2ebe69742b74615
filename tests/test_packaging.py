"""What ``pip install .`` gives: a wheel holding every package of the tree, the WGSL sources and
the embedded model as package data, py.typed and the LICENSE, claiming no generic top-level names
(convert, kernels); installed with its dependencies from PyPI into a clean virtualenv, it runs the
embedded model from another folder with no TensorFlow and no Node.js."""
import email
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fixtures.cache import cache_root

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)   # its one home
# Source folder -> the package it installs as (pyproject's package-dir).
PACKAGE_DIRS = {"wgpu_runtime": "wgpu_runtime", "kernels": "wgpu_runtime.kernels", "convert": "wgpu_runtime.convert"}

RUN_EMBEDDED_MODEL = """
import numpy as np, pathlib, sys, wgpu_runtime as wr
from wgpu_runtime.models import default_model_path
assert str(pathlib.Path(wr.__file__).resolve()).startswith(sys.argv[1]), wr.__file__
m = wr.load_graph_model(default_model_path(), adapter="vulkan")
ref = np.load(default_model_path() / "reference.npz")
print(wr.__version__)
print(float(np.abs(m.predict(ref["x"]) - ref["y"]).max()))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    wheels = tmp_path_factory.mktemp("wheels")
    # As `pip install .` builds: in an isolated environment with the build-system's setuptools (from
    # the configured index, PyPI; pip's cache kept under .fixtures/pip-cache).
    env = dict(os.environ, PIP_CACHE_DIR=str(cache_root("pip-cache")))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=wheels, env=env)
    (path,) = wheels.glob("wgpu_runtime-*.whl")
    return path


def _source_packages() -> set:
    found = set()
    for folder, package in PACKAGE_DIRS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *rel)))
    return found


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(z.read(name))


def test_wheel_holds_every_package_its_data_and_the_license(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"wgpu_runtime"}, f"top-level names in the wheel: {sorted(tops)}"
    packages = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages == _source_packages(), f"missing from pyproject's packages: {_source_packages() - packages}"
    assert any(n.startswith("wgpu_runtime/kernels/") and n.endswith(".wgsl") for n in names)
    assert any(n.startswith("wgpu_runtime/models/") and n.endswith("model.json") for n in names)
    assert "wgpu_runtime/py.typed" in names
    (license_file,) = [n for n in names if ".dist-info/" in n and n.endswith("/LICENSE")]
    assert zipfile.ZipFile(wheel).read(license_file) == (ROOT / "LICENSE").read_bytes()


def test_wheel_metadata(wheel):
    meta = _metadata(wheel)
    assert meta["Version"] == VERSION
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in meta.get_all("License-File")
    assert "Typing :: Typed" in meta.get_all("Classifier")
    requires = meta.get_all("Requires-Dist")
    plain = [r for r in requires if "extra ==" not in r]       # what `pip install wgpu-runtime` pulls in
    assert any(r.replace(" ", "").startswith("wgpu") and "<0.33" in r and ">=0.32" in r for r in plain), plain
    assert not any(r.split()[0].startswith(("tensorflow", "tf-keras", "keras")) for r in plain), plain
    assert any(r.startswith("tensorflow") and 'extra == "convert"' in r for r in requires), requires


def test_wheel_installs_and_runs_from_elsewhere(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-c", RUN_EMBEDDED_MODEL, str(target.resolve())], cwd=elsewhere,
                         capture_output=True, text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    # softmax probabilities of a 1000-class model: float32 accumulation order differs from TF's
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-4


def test_pip_install_alone_gives_a_runtime_without_tensorflow_or_node(wheel, tmp_path):
    """A clean virtualenv (no system site-packages), the wheel and its dependencies from the
    configured index (PyPI; pip's cache kept under .fixtures/pip-cache), PATH reduced to the
    virtualenv's bin folder."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "PIP_CACHE_DIR": str(cache_root("pip-cache")),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", f"/tmp/xdg-runtime-{os.getuid()}")}
    install = subprocess.run([str(vpy), "-m", "pip", "install", "-q", str(wheel)], env=env, cwd=tmp_path,
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    check = subprocess.run([str(vpy), "-m", "pip", "check"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    site = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()
    run = subprocess.run([str(vpy), "-c", RUN_EMBEDDED_MODEL, str(Path(site).resolve())], env=env,
                         cwd=elsewhere, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    version, diff = run.stdout.strip().splitlines()[-2:]
    assert version == VERSION
    assert float(diff) < 1e-4

    # From a source checkout with -P (tools/gpu_bench.sh on the lent machine): the checkout's
    # wgpu_runtime/ lacks kernels/, so neither this process nor bench's first-inference children
    # may import it from the current folder.
    first = subprocess.run([str(vpy), "-P", "-m", "wgpu_runtime", "bench", "--adapter", "vulkan", "--runs", "1",
                            "--warmup", "0", "--first-inference", "--json"], env=env, cwd=ROOT,
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    runs = json.loads(first.stdout)["first_new_process"]
    assert runs["cold"]["first_inference_ms"] > 0 and runs["warm"]["first_inference_ms"] > 0

    absent = subprocess.run([str(vpy), "-c", "import shutil\n"
                             "assert shutil.which('node') is None and shutil.which('npm') is None\n"
                             "import tensorflow"], env=env, cwd=elsewhere, capture_output=True, text=True)
    assert absent.returncode == 1 and "ModuleNotFoundError: No module named 'tensorflow'" in absent.stderr, \
        absent.stderr

    cli = subprocess.run([str(venv / "bin" / "wgpu-runtime"), "adapters", "--json"], env=env, cwd=elsewhere,
                         capture_output=True, text=True)
    assert cli.returncode == 0 and '"backend"' in cli.stdout, cli.stderr


def test_every_script_the_docs_run_directly_is_executable_in_git():
    """tools/*.sh and .ci/run are run as ``tools/x.sh`` (README, .ci, the device machine's one
    prepared run): git must record them executable, or a clean clone cannot run them."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no modes recorded to check")
    out = subprocess.run(["git", "ls-files", "-s", "--", "tools/*.sh", ".ci/run"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    modes = {line.split("\t")[1]: line.split()[0] for line in out.splitlines()}
    assert "tools/gpu_bench.sh" in modes and ".ci/run" in modes
    assert {path: mode for path, mode in modes.items() if mode != "100755"} == {}
