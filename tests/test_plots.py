"""bench plots (wgpu_runtime/plots.py) with real matplotlib, from a real profiled run of the
embedded model: the file is written atomically, decodes, has the figure's size and shows the
bars and latency markers; bad input is a one-line WgpuRuntimeError leaving no file behind;
without matplotlib the error names the extra."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from wgpu_runtime.errors import WgpuRuntimeError
from wgpu_runtime.plots import DPI, FIGSIZE, TOP_NODES, common_scope, node_times, save_bench_plot

ADAPTERS = [a for a in os.environ.get("WGPU_TEST_ADAPTERS", "vulkan,gl").split(",") if a]
BLUE, GRAY, GREEN, RED = (31, 119, 180), (127, 127, 127), (44, 160, 44), (214, 39, 40)   # tab: colours


@pytest.fixture(scope="module")
def profiled() -> dict:
    """A bench-shaped result from a real run of the embedded model: wall times of timed runs and
    each kernel launch's GPU time (timestamp queries) with its plan step's node and op."""
    from wgpu_runtime.graph import executor
    from wgpu_runtime.graph.model import load_graph_model
    from wgpu_runtime.inputs import random_inputs
    from wgpu_runtime.models import default_model_path

    model = load_graph_model(default_model_path(), ADAPTERS[0])
    assert model.device.has_timestamps, "the test adapter has no timestamp queries"
    feeds = random_inputs(model.inputs, 1)
    plan, arrays = model.prepare(feeds)
    executor.run(model.device, plan, arrays)             # warm-up
    times = []
    for _ in range(12):
        t0 = time.perf_counter()
        executor.run(model.device, plan, arrays)
        times.append((time.perf_counter() - t0) * 1e3)
    _, step_ms = executor.run_profiled(model.device, plan, arrays)
    nodes = [{"node": st.node, "op": st.op, "gpu_ms": ms} for st, ms in zip(plan.steps, step_ms)]
    return {"model": str(model.artifacts.path), "adapter": model.device.name, "batch": 1,
            "times_ms": times, "nodes": nodes}


def _has_colour(img: np.ndarray, rgb, tol: int = 12, min_pixels: int = 30) -> bool:
    px = (img[..., :3] * 255).astype(int) if img.dtype != np.uint8 else img[..., :3].astype(int)
    return int((np.abs(px - np.array(rgb)).max(axis=-1) <= tol).sum()) >= min_pixels


def test_png_of_a_real_profiled_run(tmp_path, profiled):
    from matplotlib.image import imread

    assert len({n["node"] for n in profiled["nodes"]}) > TOP_NODES      # so an "other" bar is drawn
    out = save_bench_plot(profiled, tmp_path / "bench.png")
    assert out == tmp_path / "bench.png" and out.stat().st_size > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["bench.png"]           # no .partial left
    img = imread(out)
    assert img.shape == (round(FIGSIZE[1] * DPI), round(FIGSIZE[0] * DPI), 4)
    assert _has_colour(img, BLUE, min_pixels=5000)      # the node bars and the histogram
    assert _has_colour(img, GRAY, min_pixels=500)       # the "other N nodes" bar
    assert _has_colour(img, GREEN) and _has_colour(img, RED)   # median and p90 lines


def test_svg_and_pdf_by_extension_and_partial_results(tmp_path, profiled):
    svg = save_bench_plot(profiled, tmp_path / "bench.svg").read_text()
    assert "<svg" in svg[:2000]
    assert save_bench_plot(profiled, tmp_path / "bench.pdf").read_bytes().startswith(b"%PDF")
    # the dynamic executor has no per-node times; an adapter without timestamps neither
    no_nodes = {k: v for k, v in profiled.items() if k != "nodes"}
    assert save_bench_plot(no_nodes, tmp_path / "times_only.png").stat().st_size > 0
    assert save_bench_plot({"nodes": profiled["nodes"]}, tmp_path / "nodes_only.png").stat().st_size > 0


def test_nodes_are_summed_per_node_and_ranked():
    rows = node_times([{"node": "m/a", "op": "Conv2D", "gpu_ms": 1.0}, {"node": "m/b", "op": "Relu", "gpu_ms": 1.5},
                       {"node": "m/a", "op": "Conv2D", "gpu_ms": 0.75}])       # two launches of m/a
    assert rows == [("m/a", "Conv2D", 1.75), ("m/b", "Relu", 1.5)]
    assert common_scope(["S/model/block_1/conv", "S/model/out", "S/model/block_2/x"]) == "S/model/"
    assert common_scope(["a/b", "c/d"]) == "" and common_scope(["x"]) == ""


@pytest.mark.parametrize("result, message", [
    ({}, "nothing to draw"),
    ({"nodes": [{"node": "a", "op": "Relu"}]}, "nodes[0] is not {node, op, gpu_ms}"),
    ({"nodes": [{"node": "a", "op": "Relu", "gpu_ms": float("nan")}]}, "GPU time nan"),
    ({"times_ms": ["fast"]}, "'times_ms' must be a list of numbers"),
    ([1, 2], "must be a dict"),
])
def test_bad_results_are_one_line_errors_and_write_nothing(tmp_path, result, message):
    with pytest.raises(WgpuRuntimeError) as e:
        save_bench_plot(result, tmp_path / "b.png")
    assert message in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_paths_leave_nothing_and_keep_what_was_there(tmp_path, profiled):
    with pytest.raises(WgpuRuntimeError, match="the extension picks the format"):
        save_bench_plot(profiled, tmp_path / "b.txt")
    with pytest.raises(WgpuRuntimeError, match="does not exist"):
        save_bench_plot(profiled, tmp_path / "missing" / "b.png")
    (tmp_path / "dir.png").mkdir()                     # rename onto a folder fails after drawing
    with pytest.raises(WgpuRuntimeError, match="cannot write the bench plot"):
        save_bench_plot(profiled, tmp_path / "dir.png")
    old = tmp_path / "old.png"
    old.write_bytes(b"previous plot")
    with pytest.raises(WgpuRuntimeError):
        save_bench_plot({"times_ms": [1.0, float("inf")]}, old)
    assert old.read_bytes() == b"previous plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "old.png"]


def test_without_matplotlib_the_error_names_the_extra(tmp_path):
    # A real interpreter in which matplotlib cannot be imported (sys.modules[name] = None makes
    # every `import matplotlib...` raise ImportError, as on an install without the extra).
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from wgpu_runtime.plots import save_bench_plot\n"
            "from wgpu_runtime.errors import WgpuRuntimeError\n"
            "try:\n"
            f"    save_bench_plot({{'times_ms': [1.0, 2.0]}}, {str(tmp_path / 'b.png')!r})\n"
            "except WgpuRuntimeError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "plotting needs matplotlib: pip install wgpu-runtime[plot]"
    assert list(tmp_path.iterdir()) == []
