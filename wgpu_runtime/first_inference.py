"""The first inference of a NEW process, with cold and with warm driver shader caches
(``bench --first-inference``).

Each measurement runs ``python -m wgpu_runtime.first_inference MODEL`` in a fresh process that
loads the model, runs one inference on seeded random inputs and prints one JSON line. The drivers'
disk caches of compiled shaders (Mesa: ``MESA_SHADER_CACHE_DIR``; NVIDIA:
``__GL_SHADER_DISK_CACHE_PATH``) point at a new empty folder for the cold run, then at the same
folder, now filled, for the warm run. Reported per run: ms from process start (the parent's
spawn) to the first result, and the child's own import, load and first-inference times.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

SHADER_CACHE_VARS = ("MESA_SHADER_CACHE_DIR", "__GL_SHADER_DISK_CACHE_PATH")


def measure(model_path: str, adapter: str | None = None, batch: int | None = None, tune: bool = True,
            timeout: float = 600.0, precision: str = "float32") -> dict:
    """{"cold": {...}, "warm": {...}}: two new processes, empty then warm shader caches.
    ``tune=False``: the children ignore the tuning cache too (``WGPU_RUNTIME_TUNE=0``).
    ``precision``: the model's arithmetic in the children (precision.py)."""
    with tempfile.TemporaryDirectory(prefix="wgpu-runtime-shader-cache-") as folder:
        env = {**os.environ, "MESA_SHADER_CACHE_DIR": folder, "__GL_SHADER_DISK_CACHE_PATH": folder,
               "__GL_SHADER_DISK_CACHE": "1", "__GL_SHADER_DISK_CACHE_SKIP_CLEANUP": "1"}
        if not tune:
            env["WGPU_RUNTIME_TUNE"] = "0"
        return {"cold": _child(model_path, adapter, batch, env, timeout, precision),
                "warm": _child(model_path, adapter, batch, env, timeout, precision),
                "shader_cache_vars": list(SHADER_CACHE_VARS)}


def _child(model_path, adapter, batch, env, timeout, precision="float32") -> dict:
    from .errors import WgpuRuntimeError

    # -P as this process has it: run from a source checkout (``python -P -m wgpu_runtime`` with the
    # package installed elsewhere), the child must not import the checkout's wgpu_runtime/ (whose
    # kernels/ are not inside it) from the current folder either
    cmd = [sys.executable, *(["-P"] if getattr(sys.flags, "safe_path", False) else []), "-m",
           "wgpu_runtime.first_inference", str(model_path)]
    if adapter:
        cmd += ["--adapter", adapter]
    if batch:
        cmd += ["--batch", str(batch)]
    if precision != "float32":
        cmd += ["--precision", precision]
    t0 = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        err = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise WgpuRuntimeError(f"first-inference process failed (status {out.returncode}): {err}")
    r = json.loads(lines[-1])
    r["process_to_first_result_ms"] = total = (r.pop("result_wall") - t0) * 1e3
    r["startup_ms"] = total - r["load_ms"] - r["first_inference_ms"]   # interpreter, imports, adapter
    return r


def _main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m wgpu_runtime.first_inference")
    p.add_argument("model")
    p.add_argument("--adapter")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--precision", default="float32")
    args = p.parse_args(argv)
    from .bench import _load

    t_import = time.perf_counter()
    model, feeds, _, _ = _load(args.model, args.adapter, args.batch, None, args.precision)
    model.device.wait_idle()
    t_load = time.perf_counter()
    compiled = model.device.pipelines.compiled
    model.execute(feeds)
    t_first = time.perf_counter()
    wall = time.time()
    # the child's one result line, read by the parent (this module's CLI entry point)
    sys.stdout.write(json.dumps({"result_wall": wall, "load_ms": (t_load - t_import) * 1e3,
                                 "first_inference_ms": (t_first - t_load) * 1e3,
                                 "pipelines_compiled": model.device.pipelines.compiled - compiled,
                                 "precision": model.precision}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
