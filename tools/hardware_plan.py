#!/usr/bin/env python
"""What a hardware adapter would run by default for each matmul and convolution of a model:
the variant ops/tiled.py puts first for a GPU (not software; limits given below, WebGPU's
defaults otherwise) and the workgroups it launches, next to the best plain tile's, for a batch
size. For preparing a lent-GPU run from a machine without one (docs/benchmarks.md, "Eighth
session"): the model is planned on a local adapter, and every product's variant choice is also
asked of the hardware stand-in.

    .venv/bin/python tools/hardware_plan.py .fixtures/mobilenet_v2 [--batch 1] [--storage 49152]

Rows: the product (pixels or rows, K, output channels or columns), the hardware default, its
workgroups, and the plain tile's where the default is a split-K form (its chunks in brackets)
or the subgroup gemv. No timing: an ordering rule's consequences, not a measurement.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: an installed wgpu_runtime first

from wgpu_runtime import get_device, load_model, tuning  # noqa: E402
from wgpu_runtime.ops import matmul, tiled  # noqa: E402
from wgpu_runtime.ops.common import cdiv  # noqa: E402


def _groups(v, m: int, n: int, k4: int, nz: int, blocked: int) -> tuple[int, int]:
    """(workgroups, K chunks) variant ``v`` launches for ``nz`` m x n outputs over k4 vec4s
    (``blocked``: matmul.wgsl's workgroups unsplit)."""
    if v.name == tiled.GEMV.name:
        return tiled.gemv_groups(n), 1
    t = v.get("tile")
    groups = blocked if t is None else t.groups(m, n, nz)
    if not v.get("split"):
        return groups, 1
    step, cap = (1, matmul.K4_CHUNK) if t is None else (t.bk // 4, t.k4_chunk())
    chunks = tiled.split_count(k4, step, groups, cap)
    return groups * chunks, chunks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="model.json or its folder")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--adapter", default=None, help="the local adapter that plans the model")
    ap.add_argument("--storage", type=int, default=None, help="the GPU's workgroup storage bytes (default 16384)")
    ap.add_argument("--invocations", type=int, default=None, help="its invocations per workgroup (default 256)")
    args = ap.parse_args(argv)
    limits = {k: v for k, v in (("max-compute-workgroup-storage-size", args.storage),
                                ("max-compute-invocations-per-workgroup", args.invocations)) if v}
    gpu = SimpleNamespace(is_software=False, name="hardware stand-in", limits=limits)
    rows = []
    conv_variant, matmul_variant = tiled.conv_variant, tiled.matmul_variant

    def conv_spy(device, g, m, n4, k4, transposed, half=False):
        with tuning.disabled(), tuning.recording() as points:
            conv_variant(gpu, g, m, n4, k4, transposed, half)
        rows.append(("conv", f"{m} px {g.kh}x{g.kw}", m, 1, g.kh * g.kw * g.c, 4 * n4, g.kh * g.kw * k4, 0,
                     points[-1].candidates))
        return conv_variant(device, g, m, n4, k4, transposed, half)

    def matmul_spy(device, m, n, k, nbatch, **kw):
        with tuning.disabled(), tuning.recording() as points:
            matmul_variant(gpu, m, n, k, nbatch, **{**kw, "subgroup": False, "gemv": kw.get("texture", False)})
        rows.append(("matmul", f"{nbatch} x {m} rows", m, nbatch, k, n, cdiv(k, 4), kw.get("blocked_groups", 0),
                     points[-1].candidates))
        return matmul_variant(device, m, n, k, nbatch, **kw)

    tiled.conv_variant, tiled.matmul_variant = conv_spy, matmul_spy
    try:
        device = get_device(args.adapter)
        model = load_model(args.model, device=device)
        feeds = {i.name: np.zeros([args.batch if d in (None, -1) else d for d in i.shape], np.float32)
                 for i in model.inputs}
        with tuning.disabled():
            model.prepare(feeds)
    finally:
        tiled.conv_variant, tiled.matmul_variant = conv_variant, matmul_variant
    print(f"{args.model} at batch {args.batch}, hardware defaults (limits: {limits or 'WebGPU defaults'})")
    print(f"{'op':6s} {'product':16s} {'K':>6s} {'N':>6s}  {'default on hardware':34s} {'workgroups':>12s}  plain tile")
    for family, what, m, nz, k, n, k4, blocked, candidates in rows:
        offered = {v.name: v for v in [*tiled._order(gpu, m, n, nz, k4), tiled.REGBLOCK, tiled.REGBLOCK_SPLIT,
                                       tiled.GEMV]}
        first = offered.get(candidates[0])
        if first is None:       # a texture or uniform kernel (never first on hardware)
            print(f"{family:6s} {what:16s} {k:6d} {n:6d}  {candidates[0]:34s}")
            continue
        groups, chunks = _groups(first, m, n, k4, nz, blocked)
        plain = next((c for c in candidates if not c.endswith(tiled.SPLIT_SUFFIX) and c != tiled.GEMV.name), "")
        note = ""
        if plain and plain != first.name and plain in offered:
            note = f"{plain} {_groups(offered[plain], m, n, k4, nz, blocked)[0]}"
        print(f"{family:6s} {what:16s} {k:6d} {n:6d}  {first.name:34s} {groups:6d}"
              f"{f' ({chunks})' if chunks > 1 else '':>6s}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
