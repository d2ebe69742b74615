#!/usr/bin/env python
"""Run the embedded default model (MobileNetV2 0.35, 128x128, seeded weights) on every WebGPU
adapter and compare each one with the first adapter and with TensorFlow's stored reference output.

    .venv/bin/python examples/compare_adapters.py [WORK_DIR]

Differences are judged by the project's tolerance policy for whole models
(``wgpu_runtime.tolerance.MODEL``: errors in float32 ULPs of the output's scale; see
docs/conformance.md). Exit status 1 when any adapter is out of tolerance. Each adapter's output
is written to WORK_DIR/outputs.npz (default: a temporary folder, removed at the end).
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import wgpu_runtime as wr
from wgpu_runtime.models import default_model_path
from wgpu_runtime.tolerance import MODEL, compare


def adapter_query(adapter) -> str:
    """A query naming this adapter: its backend and device name ("Vulkan llvmpipe (...)")."""
    return f"{adapter.info['backend_type']} {adapter.info['device']}"


def main(work: Path) -> int:
    folder = default_model_path()
    reference = np.load(folder / "reference.npz")       # x: the input, y: TensorFlow's output
    x, want = reference["x"], reference["y"]

    outputs, rows, ok = {}, [], True
    for adapter in wr.enumerate_adapters():
        query = adapter_query(adapter)
        if query in outputs:                            # two identical adapters: one query names both
            print(f"skipped a second adapter named {query!r}")
            continue
        try:
            model = wr.load_graph_model(folder, adapter=query)
            outputs[query] = got = model.predict(x)
        except Exception as e:                          # e.g. an adapter without what the model needs
            rows.append((query, "-", "-", f"FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
            ok = False
            continue
        first = next(iter(outputs.values()))
        vs_ref = compare(got, want, MODEL, per="tensor")
        vs_first = compare(got, first, MODEL, per="tensor")
        ok = ok and vs_ref.ok and vs_first.ok
        status = "ok" if vs_ref.ok and vs_first.ok else "MISMATCH"
        rows.append((query, f"{vs_ref.abs_err:.3g} ({vs_ref.ulps:.3g} ULP)",
                     f"{vs_first.abs_err:.3g} ({vs_first.ulps:.3g} ULP)", status))

    np.savez(work / "outputs.npz", **outputs)
    headers = ("adapter", "max |diff| vs reference", "max |diff| vs first", "status")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    for r in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"tolerance: {MODEL.ulps:g} ULP of the output's scale ({MODEL.reason})")
    if not ok or not outputs:
        print("MISMATCH: some adapter is out of tolerance (or none ran)", file=sys.stderr)
        return 1
    print(f"OK: {len(outputs)} adapter(s) agree with the reference and with each other")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Run the default model on every adapter and compare.")
    p.add_argument("work_dir", nargs="?", type=Path, help="where to write (default: a temporary folder)")
    args = p.parse_args()
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        sys.exit(main(args.work_dir.resolve()))
    with tempfile.TemporaryDirectory(prefix="wgpu-runtime-example-") as tmp:
        sys.exit(main(Path(tmp)))
