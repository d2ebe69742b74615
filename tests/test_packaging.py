"""A non-editable install works from another folder: WGSL sources and the embedded model are
package data, and the distribution claims no generic top-level names (convert, kernels)."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_runs_from_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("wgpu_runtime-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"wgpu_runtime"}, f"top-level names in the wheel: {sorted(tops)}"
    assert any(n.startswith("wgpu_runtime/kernels/") and n.endswith(".wgsl") for n in names)
    assert any(n.startswith("wgpu_runtime/models/") and n.endswith("model.json") for n in names)

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import numpy as np, wgpu_runtime as wr, pathlib\n"
            "from wgpu_runtime.models import default_model_path\n"
            "assert str(pathlib.Path(wr.__file__).resolve()).startswith(%r), wr.__file__\n"
            "m = wr.load_graph_model(default_model_path(), adapter='vulkan')\n"
            "ref = np.load(default_model_path() / 'reference.npz')\n"
            "y = m.predict(ref['x'])\n"
            "print(float(np.abs(y - ref['y']).max()))\n") % str(target.resolve())
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    # softmax probabilities of a 1000-class model: float32 accumulation order differs from TF's
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-4
