"""The PyTorch peer of `bench` on a CUDA machine: torchvision's MobileNetV2 (random weights, the
same graph as Keras' MobileNetV2 1.0 224) in fp32 with TF32 off, channels-last, eager and as a
CUDA graph, batch 1 and 8. Prints one JSON object (median / min wall ms per inference, measured
with CUDA events around each run and a synchronize).

    python3 tools/bench_torch_models.py [--runs 100] [--batches 1,8] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys


def cuda_event_times(fn, runs: int, warmup: int, torch) -> list[float]:
    """Milliseconds of each of ``runs`` calls of ``fn`` after ``warmup`` untimed ones, measured
    with CUDA events around the call and a synchronize (also used by tools/bench_kernels.py)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def _time(fn, runs: int, torch) -> dict:
    times = cuda_event_times(fn, runs, 10, torch)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--json", metavar="OUT.json")
    args = p.parse_args(argv)
    try:
        import torch
        import torchvision
    except ImportError as e:
        print(json.dumps({"error": f"PyTorch peer unavailable: {e}"}))
        return 0
    if not torch.cuda.is_available():
        print(json.dumps({"error": "PyTorch peer unavailable: no CUDA device"}))
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    model = torchvision.models.mobilenet_v2(weights=None).eval().cuda().to(memory_format=torch.channels_last)
    result = {"torch": torch.__version__, "torchvision": torchvision.__version__,
              "gpu": torch.cuda.get_device_name(0), "model": "torchvision mobilenet_v2 224 fp32", "batches": {}}
    with torch.inference_mode():
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(batch, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
            eager = _time(lambda: model(x), args.runs, torch)
            static_x = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    model(static_x)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                model(static_x)
            cuda_graph = _time(graph.replay, args.runs, torch)
            result["batches"][str(batch)] = {"eager": eager, "cuda_graph": cuda_graph}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
