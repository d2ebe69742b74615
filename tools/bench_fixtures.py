#!/usr/bin/env python
"""Every fixture model, timed with this tree and with another one (a worktree of an older
commit), interleaved: did any model get slower?

    git worktree add /tmp/base <commit>
    .venv/bin/python tools/bench_fixtures.py --base /tmp/base [--adapter vulkan] [--rounds 2] [--runs 30]

Each timing is ``python -m wgpu_runtime bench MODEL --json --no-tune`` in a new process with
PYTHONPATH set to the tree (the embedded model, then every graph model under .fixtures/), base
and this tree alternating per model and round. Prints median / min ms per tree and round, and
the ratio of the medians of the rounds' medians (this tree / base).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def models() -> list[str | None]:
    """None (the embedded model), then every fixture folder holding a graph model.json."""
    found = []
    for folder in sorted((ROOT / ".fixtures").glob("*/")):
        spec = folder / "model.json"
        if spec.is_file() and json.loads(spec.read_text()).get("format") != "layers-model":
            found.append(str(folder))
    return [None, *found]


def link_packages(tree: Path) -> None:
    """Give a plain worktree's package its own kernels/ and convert/ (links to the worktree's
    folders): else the editable install of this tree would lend it this tree's kernels."""
    for name in ("kernels", "convert"):
        link = tree / "wgpu_runtime" / name
        if not link.exists() and (tree / name).is_dir():
            link.symlink_to(Path("..") / name)


def bench(tree: Path, model: str | None, adapter: str, runs: int) -> dict | None:
    cmd = [sys.executable, "-m", "wgpu_runtime", "bench", *([model] if model else []), "--adapter", adapter,
           "--runs", str(runs), "--no-tune", "--json"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(cmd, cwd="/tmp", env=env, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"  {tree}: {model or 'embedded'} failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, type=Path, help="the other tree (e.g. a git worktree)")
    ap.add_argument("--adapter", default="vulkan")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    trees = {"base": args.base.resolve(), "this": ROOT}
    if trees["base"] == ROOT:
        ap.error("--base must be another tree than this one")
    link_packages(trees["base"])
    for model in models():
        medians: dict[str, list[float]] = {"base": [], "this": []}
        for r in range(args.rounds):
            for side, tree in trees.items():
                res = bench(tree, model, args.adapter, args.runs)
                if res is None:
                    continue
                medians[side].append(res["median_ms"])
                print(f"{Path(model).name if model else 'embedded':<36} round {r + 1} {side:<4} "
                      f"median {res['median_ms']:9.3f}  min {res['min_ms']:9.3f}  dispatches {res['dispatches']}",
                      flush=True)
        if medians["base"] and medians["this"]:
            ratio = statistics.median(medians["this"]) / statistics.median(medians["base"])
            print(f"{Path(model).name if model else 'embedded':<36} this / base: {ratio:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
