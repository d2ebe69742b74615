"""A benchmark result as a picture: per-node GPU time (bars) and the latency distribution.

``save_bench_plot(result, path)`` takes the dict ``bench --json`` prints (``nodes``: one
``{"node", "op", "gpu_ms"}`` per kernel launch or per node; ``times_ms``: every timed run's wall
time) and writes PNG, SVG or PDF by the file's extension. Needs matplotlib
(``pip install wgpu-runtime[plot]``); it draws on its own Agg canvas, never through pyplot, so
the caller's matplotlib backend and figures are left alone.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import WgpuRuntimeError

TOP_NODES = 25               # bars drawn; the rest are summed into one "other N nodes" bar
FIGSIZE = (12.0, 11.0)       # inches
DPI = 100                    # PNG: FIGSIZE * DPI pixels (1200 x 1100)
MIN_RUNS_FOR_FENCE = 20      # fewer runs: every one is drawn, however far out
MAX_LABEL = 70               # characters of a bar label; longer node names keep their end


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise WgpuRuntimeError("plotting needs matplotlib: pip install wgpu-runtime[plot]") from None
    return Figure, FigureCanvasAgg


def _label(node: str, op: str) -> str:
    text = f"{node} ({op})"
    if len(text) <= MAX_LABEL:
        return text
    keep = MAX_LABEL - len(op) - 4          # "…" + " (" + ")"
    return f"…{node[-keep:]} ({op})"


def node_times(nodes) -> list[tuple[str, str, float]]:
    """(node, op, GPU ms) per node, summed over the node's kernel launches, slowest first."""
    if not isinstance(nodes, (list, tuple)):
        raise WgpuRuntimeError(f"bench result: 'nodes' must be a list of {{node, op, gpu_ms}}, "
                               f"not {type(nodes).__name__}")
    total: dict[tuple[str, str], float] = {}
    for i, n in enumerate(nodes):
        try:
            key, ms = (str(n["node"]), str(n["op"])), float(n["gpu_ms"])
        except (KeyError, TypeError, ValueError):
            raise WgpuRuntimeError(f"bench result: nodes[{i}] is not {{node, op, gpu_ms}}: {n!r:.80}") from None
        if not math.isfinite(ms) or ms < 0:
            raise WgpuRuntimeError(f"bench result: nodes[{i}] ({key[0]}) has GPU time {ms!r} ms")
        total[key] = total.get(key, 0.0) + ms
    return sorted(((node, op, ms) for (node, op), ms in total.items()), key=lambda r: (-r[2], r[0]))


def _times(values) -> np.ndarray:
    try:
        t = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise WgpuRuntimeError("bench result: 'times_ms' must be a list of numbers") from None
    if not np.all(np.isfinite(t)):
        raise WgpuRuntimeError("bench result: 'times_ms' holds a value that is not a finite number")
    return t


def _title(result: dict) -> str:
    parts = []
    model = result.get("model")
    if model:
        p = Path(str(model))
        parts.append(p.parent.name if p.name == "model.json" and p.parent.name else p.name)
    if result.get("adapter"):
        parts.append(str(result["adapter"]))
    if result.get("batch") is not None:
        parts.append(f"batch {result['batch']}")
    return "  ·  ".join(parts) or "benchmark"


def common_scope(names: list[str]) -> str:
    """The name scope all ``names`` share ("StatefulPartitionedCall/model/"), "" when none."""
    parts = [n.split("/")[:-1] for n in names]
    if not parts:
        return ""
    prefix = []
    for level in zip(*parts):
        if any(x != level[0] for x in level):
            break
        prefix.append(level[0])
    return "/".join(prefix) + "/" if prefix else ""


def _draw_nodes(ax, rows: list[tuple[str, str, float]]) -> None:
    total = sum(ms for _, _, ms in rows)
    shown = rows[:TOP_NODES]
    scope = common_scope([node for node, _, _ in rows])
    labels = [_label(node[len(scope):], op) for node, op, _ in shown]
    values = [ms for _, _, ms in shown]
    colors = ["tab:blue"] * len(shown)
    rest = rows[TOP_NODES:]
    if rest:
        labels.append(f"other {len(rest)} nodes")
        values.append(sum(ms for _, _, ms in rest))
        colors.append("tab:gray")
    y = np.arange(len(values))
    ax.barh(y, values, color=colors, height=0.7)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()                       # slowest on top
    vmax = max(values) if values else 0.0
    for yi, v in zip(y, values):
        share = f" ({100 * v / total:.1f}%)" if total > 0 else ""
        ax.text(v + 0.01 * vmax, yi, f"{v:.3f} ms{share}", va="center", fontsize=7)
    ax.set_xlim(0, vmax * 1.18 if vmax > 0 else 1.0)
    ax.set_xlabel("GPU time per node (ms, timestamp queries)"
                  + (f"; node names under {scope}" if scope else ""))
    ax.set_title(f"GPU time by node: {total:.3f} ms in {len(rows)} nodes"
                 + (f" (top {TOP_NODES} shown)" if rest else ""), fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def _draw_latency(ax, t: np.ndarray) -> None:
    from matplotlib.ticker import MaxNLocator

    median, p90 = float(np.median(t)), float(np.percentile(t, 90))
    q25, q75 = np.percentile(t, [25, 75])
    # Tukey's far-out fence: with enough runs, a stray one must not squash the distribution
    fence = max(float(q75 + 3 * (q75 - q25)), p90) if len(t) >= MIN_RUNS_FOR_FENCE else float(t.max())
    inside, outliers = t[t <= fence], t[t > fence]
    bins = min(40, max(5, int(math.sqrt(len(inside))) * 2))
    counts, _, _ = ax.hist(inside, bins=bins, color="tab:blue", alpha=0.75, edgecolor="white")
    ax.set_ylim(0, max(1.0, float(counts.max())) * 1.45)       # room for the legend above the bars
    ax.axvline(median, color="tab:green", linewidth=2, label=f"median {median:.3f} ms")
    ax.axvline(p90, color="tab:red", linewidth=2, linestyle="--", label=f"p90 {p90:.3f} ms")
    if outliers.size:
        ax.plot([], [], " ", label=f"{outliers.size} run{'s' if outliers.size > 1 else ''} above "
                                   f"{fence:.3f} ms not drawn (max {outliers.max():.3f} ms)")
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("wall time per inference (ms)")
    ax.set_ylabel("runs")
    ax.set_title(f"Latency of {len(t)} timed runs (min {t.min():.3f} ms, max {t.max():.3f} ms)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def _placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color="gray", transform=ax.transAxes)
    ax.set_axis_off()


def save_bench_plot(result: dict, path: str | os.PathLike) -> Path:
    """Draw ``result`` (a bench result dict) to ``path`` (.png, .svg, .pdf...), atomically.
    Raises WgpuRuntimeError (one line) without matplotlib, on a malformed result, an extension
    matplotlib cannot write, or a folder that does not exist; no partial file is left."""
    if not isinstance(result, dict):
        raise WgpuRuntimeError(f"bench plot: the result must be a dict, not {type(result).__name__}")
    path = Path(path)
    Figure, FigureCanvasAgg = _require_matplotlib()
    rows = node_times(result["nodes"]) if result.get("nodes") is not None else []
    times = _times(result["times_ms"]) if result.get("times_ms") is not None else np.zeros(0)
    if not rows and not times.size:
        raise WgpuRuntimeError("bench plot: the result has neither per-node GPU times ('nodes') "
                               "nor run times ('times_ms'): nothing to draw")

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in canvas.get_supported_filetypes():
        raise WgpuRuntimeError(f"bench plot {path}: the extension picks the format; one of "
                               + ", ".join(f".{e}" for e in sorted(canvas.get_supported_filetypes())))
    if not path.resolve().parent.is_dir():
        raise WgpuRuntimeError(f"bench plot {path}: folder {path.parent} does not exist")

    ax_nodes, ax_lat = fig.subplots(2, 1, height_ratios=[3, 1.2])
    fig.suptitle(_title(result), fontsize=13, fontweight="bold")
    if rows:
        _draw_nodes(ax_nodes, rows)
    else:
        _placeholder(ax_nodes, "no per-node GPU times (adapter without timestamp queries, "
                               "or a model on the dynamic executor)")
    if times.size:
        _draw_latency(ax_lat, times)
    else:
        _placeholder(ax_lat, "no run times in this result")

    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as f:
            fig.savefig(f, format=fmt, dpi=DPI)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WgpuRuntimeError(f"cannot write the bench plot {path}: {e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
