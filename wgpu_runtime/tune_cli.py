"""``python -m wgpu_runtime tune [MODEL]``: time the kernel variants a model's plan can choose
from on one adapter, and keep the winners in the persistent tuning cache (graph/autotune.py,
tuning/cache.py). Later runs, ``run`` and ``bench`` use them (``--no-tune`` there: defaults)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import logs
from .cli_args import positive_int
from .exit_codes import OK, UsageError
from .precision import PRECISIONS


def add_subcommand(sub):
    p = sub.add_parser("tune", help="time a model's kernel variants on an adapter and cache the winners",
                       description="Time the candidate kernel variants (tile and workgroup sizes, vector "
                                   "widths) at every choice point of the model's plan, once per adapter, and "
                                   "store the winners in the tuning cache ($WGPU_RUNTIME_CACHE, else "
                                   "$XDG_CACHE_HOME/wgpu-runtime or ~/.cache/wgpu-runtime).")
    p.add_argument("model", nargs="?", help="model.json or its folder (default: the embedded model)")
    p.add_argument("--adapter", help="the adapter: a substring of its backend, device or description")
    p.add_argument("--batch", type=positive_int, default=None, help="rows per inference of the tuned inputs (default 1)")
    p.add_argument("--runs", type=positive_int, default=5, help="timed runs per candidate; the median counts (default 5)")
    p.add_argument("--clear", action="store_true", help="forget this adapter's cached winners first, then tune")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="tune the model's float16 kernels (f16 matmuls and convolutions: shader-f16) instead")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    def handler(args) -> int:
        return _tune(args)
    return "tune", handler


def _tune(args) -> int:
    from . import tuning
    from .bench import _load
    from .graph.autotune import tune
    from .models import default_model_path
    from .tuning import cache

    if args.model is not None and not Path(args.model).exists():
        raise UsageError(f"model not found: {args.model}")
    tuning.set_enabled(True)
    model, feeds, model_path, _ = _load(args.model or default_model_path(), args.adapter, args.batch, None,
                                        args.precision)
    if args.clear:
        cache.for_device(model.device).clear()
    live = logs.live_progress(args.json)
    if not live:
        report = tune(model, feeds, runs=args.runs, retune=args.clear)
    else:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("tuning {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as prog:
            task = prog.add_task("(planning the model)", total=None)
            report = tune(model, feeds, runs=args.runs, retune=args.clear,
                          progress=lambda done, total, what: prog.update(task, completed=done, total=total,
                                                                         description=what))
    if args.json:
        sys.stdout.write(json.dumps({"model": model_path, **report.to_dict()}, indent=2) + "\n")
    else:
        _print(report, model_path)
    return OK


def _print(report, model_path: str) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console() if sys.stdout.isatty() else Console(width=140)   # piped: whole rows, not 80 columns
    t = Table(title=f"{Path(model_path).parent.name}/{Path(model_path).name} on {report.adapter}: kernel variants "
                    f"(median ms of each alone: {next((p.timer for p in report.points if p.timer), 'cached')} time)")
    # node and candidate names unbroken (a tile and its split-K form differ only at the end:
    # "tiled_64x64_k16_4x4" and "tiled_64x64_k16_4x4_splitk"); the other columns wrap
    for col in ("family", "shape class", "node", "candidate", "ms", ""):
        t.add_column(col, justify="right" if col == "ms" else "left", no_wrap=col in ("node", "candidate"))
    for p in report.points:
        head = [p.family, str(p.shape_class), "/".join(p.node.split("/")[-2:])]   # the node's own name
        cands = p.candidates or [None]
        for i, c in enumerate(cands):
            if c is None:
                row = [p.winner, "-", "only candidate"]
            else:
                note = ("[green]winner[/]" + (f" {p.speedup:.2f}x the default" if p.speedup and p.speedup != 1 else "")
                        if c.name == p.winner else f"[red]failed[/]: {c.error}" if c.error else "")
                note = "; ".join(x for x in (note, _in_context_note(p, c.name)) if x)
                if p.cached and c.name == p.winner:
                    note += " (cached)"
                row = [c.name, "-" if c.ms is None else f"{c.ms:.3f}", note]
            t.add_row(*(head if i == 0 else ["", "", ""]), *row, end_section=i == len(cands) - 1)
    con.print(t)
    if not report.points:
        con.print("no choice points: this model's kernels have no variants to choose from", highlight=False)
    con.print(f"cache: {report.cache_path}" + ("" if report.saved else " (not written)"), highlight=False)


def _in_context_note(p, name: str) -> str:
    """What the whole-model check (graph/in_context.py) said of candidate ``name``, if it ran on it."""
    ctx = p.in_context_ms or {}
    if name not in ctx or name == p.default:
        if name == p.fastest_alone and p.in_context_error:
            return f"not timed in the model ({p.in_context_error}): default kept"
        return ""
    mine, default = ctx[name], ctx.get(p.default)
    verdict = "" if name == p.winner else ": default kept"
    return f"in the model {mine:.3f} ms against the default's {default:.3f}{verdict}"
