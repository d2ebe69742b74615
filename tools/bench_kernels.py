#!/usr/bin/env python
"""Time every kernel variant of matmuls and convolutions on one adapter (and, with --torch, the
PyTorch peer on CUDA in the same run); print GFLOP/s per variant, optionally write JSON.

    .venv/bin/python tools/bench_kernels.py                       # here: lavapipe, small sizes
    python tools/bench_kernels.py --matmul 1024,4096 --batch 8 --torch --json h200.json   # a big GPU

Each problem runs as a one-node graph (the weight operand a constant, as in a model) under
``tuning.forcing({family: variant})`` for every variant the lowering offers for it (a variant it
does not offer there is reported as such). Time: the GPU timestamps of the plan's dispatches
(executor.run_profiled; their sum, pack / crop copies included) where the adapter has them, else
the wall time of a whole inference (upload and read-back included). Medians of --runs after
--warmup. The PyTorch peer: torch.matmul / torch.nn.functional.conv2d (channels-last, i.e. NHWC; groups for
depthwise)
on CUDA in float32 with TF32 off and cudnn.benchmark on, timed with CUDA events. No TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: an installed wgpu_runtime first

from wgpu_runtime import get_device, tuning  # noqa: E402
from wgpu_runtime.graph import executor  # noqa: E402
from wgpu_runtime.graph.autotune import time_plan  # noqa: E402
from wgpu_runtime.graph.single_op import op_model  # noqa: E402
from wgpu_runtime.ops import tiled  # noqa: E402

from bench_torch_models import cuda_event_times  # noqa: E402

# (name, input H=W, Cin, Cout, kernel size, padding): MobileNetV2-like 1x1 and ResNet-like 3x3, stride 1
CONVS = [("conv1x1 56x56x144->24", 56, 144, 24, 1, "VALID"),
         ("conv1x1 28x28x192->64", 28, 192, 64, 1, "VALID"),
         ("conv1x1 14x14x576->96", 14, 576, 96, 1, "VALID"),
         ("conv3x3 56x56x64->64", 56, 64, 64, 3, "SAME"),
         ("conv3x3 28x28x128->128", 28, 128, 128, 3, "SAME")]
# batch-1 latency shapes, whatever --batch says (the split-K forms' problems: small outputs over a
# long K): (name, M, K, N) matmuls and CONVS-like 1x1 convolutions from MobileNetV2's last layers
FEW_ROW_MATMULS = [("classifier 1x1280 x 1280x1000", 1, 1280, 1000)]
FEW_PIXEL_CONVS = [("conv1x1 7x7x960->160", 7, 960, 160, 1, "VALID"),
                   ("conv1x1 7x7x320->1280", 7, 320, 1280, 1, "VALID")]
# (name, input H=W, channels, stride): MobileNetV2's 3x3 depthwise convolutions, SAME
DEPTHWISE = [("dw3x3 112x112x96 s2", 112, 96, 2), ("dw3x3 56x56x144 s1", 56, 144, 1),
             ("dw3x3 14x14x576 s1", 14, 576, 1)]


@dataclass
class Problem:
    name: str
    family: str
    op: str
    attrs: dict
    inputs: list          # [activation, weight]
    flops: float
    results: dict = field(default_factory=dict)


def problems(matmul_sizes: list[int], batch: int, seed: int = 0) -> list[Problem]:
    rng = np.random.default_rng(seed)
    out = []
    for n in matmul_sizes:
        a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        out.append(Problem(f"matmul {n}^3", "matmul", "MatMul", {}, [a, b], 2.0 * n ** 3))
    for name, m, k, n in FEW_ROW_MATMULS:
        a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
        out.append(Problem(name, "matmul", "MatMul", {}, [a, b], 2.0 * m * k * n))
    for (name, hw, cin, cout, k, pad), nb in [*((c, batch) for c in CONVS), *((c, 1) for c in FEW_PIXEL_CONVS)]:
        x = rng.standard_normal((nb, hw, hw, cin), dtype=np.float32)
        f = rng.standard_normal((k, k, cin, cout), dtype=np.float32) / np.sqrt(k * k * cin)
        attrs = {"strides": [1, 1, 1, 1], "padding": pad, "data_format": "NHWC"}
        oh = hw if pad == "SAME" else hw - k + 1
        out.append(Problem(f"{name} b{nb}", "conv2d", "Conv2D", attrs, [x, f],
                           2.0 * nb * oh * oh * cout * k * k * cin))
    for name, hw, c, stride in DEPTHWISE:
        x = rng.standard_normal((batch, hw, hw, c), dtype=np.float32)
        f = rng.standard_normal((3, 3, c, 1), dtype=np.float32) / 3
        attrs = {"strides": [1, stride, stride, 1], "padding": "SAME", "data_format": "NHWC"}
        oh = -(-hw // stride)
        out.append(Problem(f"{name} b{batch}", "depthwise", "DepthwiseConv2dNative", attrs, [x, f],
                           2.0 * batch * oh * oh * c * 9))
    return out


def _time_plan(dev, model, feeds, runs: int, warmup: int) -> tuple[list[float], str]:
    plan, arrays = model.prepare(feeds)
    for _ in range(warmup):
        executor.run(dev, plan, arrays)
    times, timer = time_plan(dev, plan, arrays, runs)
    return times, "gpu-timestamps" if timer == "gpu" else "wall"


def bench_variant(dev, p: Problem, variant: str | None, runs: int, warmup: int) -> dict:
    """Times ``p`` under ``variant`` (None: the lowering's own choice)."""
    before = dict(tiled.LAUNCHED)
    with tuning.forcing({p.family: variant} if variant else {}):
        model = op_model(p.op, p.attrs, p.inputs, dev, const_inputs={1})
        feeds = {"in0": p.inputs[0]}
        model.prepare(feeds)                       # plans (lowers) under the forced variant
    chosen = [k[1] for k, n in tiled.LAUNCHED.items() if k[0] == p.family and k[2] == dev.name
              and n > before.get(k, 0)]
    if variant and variant not in chosen:
        return {"offered": False}
    times, how = _time_plan(dev, model, feeds, runs, warmup)
    ms = statistics.median(times)
    return {"offered": True, "variant": chosen[0] if chosen else None, "ms_median": ms, "ms_all": times,
            "gflops": p.flops / ms / 1e6, "timing": how}


def torch_peer(p: Problem, runs: int, warmup: int):
    """The PyTorch time of ``p`` on CUDA (fp32, TF32 off, cudnn.benchmark on), or None."""
    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda")
    x = torch.from_numpy(p.inputs[0]).to(dev)
    w = torch.from_numpy(p.inputs[1]).to(dev)
    if p.family == "matmul":
        def fn():
            return torch.matmul(x, w)
    else:
        k, stride = p.inputs[1].shape[0], p.attrs["strides"][1]
        # SAME with an odd k: TF pads (k-1)//2 on each side at stride 1; at stride 2 on an even
        # size TF pads one less on top / left than this, the same amount of work
        pad = (k - 1) // 2 if p.attrs["padding"] == "SAME" else 0
        xc = x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)     # NHWC in memory
        groups = 1
        if p.family == "depthwise":      # [kh, kw, c, 1] -> [c, 1, kh, kw]
            groups = p.inputs[1].shape[2]
            wc = w.permute(2, 3, 0, 1).contiguous(memory_format=torch.channels_last)
        else:                            # [kh, kw, in, out] -> [out, in, kh, kw]
            wc = w.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)

        def fn():
            return F.conv2d(xc, wc, stride=stride, padding=pad, groups=groups)
    with torch.no_grad():
        times = cuda_event_times(fn, runs, warmup, torch)
    ms = statistics.median(times)
    return {"ms_median": ms, "ms_all": times, "gflops": p.flops / ms / 1e6, "timing": "cuda-events",
            "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}


def torch_available() -> str | None:
    """None when the PyTorch peer can run, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch has no CUDA device"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", default=None, help="adapter substring (default: the first found)")
    ap.add_argument("--matmul", default="512,1024", help="square matmul sizes, comma-separated")
    ap.add_argument("--batch", type=int, default=1, help="convolution batch (8 on a big GPU)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--only", default="", help="problems whose name contains this")
    ap.add_argument("--variants", default="", help="comma-separated variant names (default: all offered)")
    ap.add_argument("--torch", action="store_true", help="also time PyTorch on CUDA (skipped when absent)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)

    dev = get_device(args.adapter)
    sizes = [int(s) for s in args.matmul.split(",") if s]
    probs = [p for p in problems(sizes, args.batch) if args.only in p.name]
    why_no_torch = torch_available() if args.torch else "not requested (--torch)"
    if args.torch and why_no_torch:
        print(f"PyTorch peer skipped: {why_no_torch}", file=sys.stderr)
    print(f"adapter: {dev.name}  timing: {'GPU timestamps' if dev.has_timestamps else 'wall clock'}  "
          f"runs {args.runs} (median) after {args.warmup}")
    report = {"adapter": dev.name, "backend": dev.backend, "runs": args.runs, "warmup": args.warmup,
              "batch": args.batch, "torch": why_no_torch or "ran", "problems": []}
    for p in probs:
        names = [v for v in args.variants.split(",") if v] or tiled.variant_names(p.family)
        default = bench_variant(dev, p, None, args.runs, args.warmup)
        peer = torch_peer(p, args.runs, args.warmup) if not why_no_torch else None
        print(f"\n{p.name}  ({p.flops / 1e9:.2f} GFLOP)  default choice: {default['variant']} "
              f"{default['gflops']:.1f} GFLOP/s" + (f"  | PyTorch {peer['gflops']:.1f} GFLOP/s "
                                                     f"({peer['ms_median']:.3f} ms)" if peer else ""))
        for v in names:
            r = bench_variant(dev, p, v, args.runs, args.warmup)
            p.results[v] = r
            if not r["offered"]:
                print(f"  {v:28s} not offered for this problem on this adapter")
                continue
            share = f"  {100 * r['gflops'] / peer['gflops']:5.1f} % of PyTorch" if peer else ""
            print(f"  {v:28s} {r['ms_median']:10.3f} ms  {r['gflops']:9.2f} GFLOP/s{share}", flush=True)
        report["problems"].append({"name": p.name, "family": p.family, "flops": p.flops, "default": default,
                                   "variants": p.results, "torch": peer})
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
