"""The batch command: check the arguments, run (here or on Ray), show progress and a summary."""
from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

from ..exit_codes import CHECK_FAILED, MODEL_OR_INPUT, OK, UsageError
from . import run as runner
from .work import DATASET_OUTPUT, file_items, kind_of, pending, prepare_output


@contextlib.contextmanager
def progress_bar(total: int, unit: str, enabled: bool):
    """A rich bar on stderr (a terminal only) with items done and rows/s; yields advance(items, rows)."""
    if not enabled:
        yield lambda items, rows: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    start = time.perf_counter()
    rows_done = [0]
    with Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task("batch", total=total, rate="")

        def advance(items: int, rows: int) -> None:
            rows_done[0] += rows
            rate = rows_done[0] / max(time.perf_counter() - start, 1e-9)
            prog.update(task, advance=items, rate=f"{rate:.1f} rows/s")
        yield advance


def print_summary(s: runner.Summary, console) -> None:
    from rich.table import Table

    t = Table(title=f"batch ({s.where}): {s.rows} rows in {s.seconds:.1f} s, {s.rows_per_s:.1f} rows/s")
    for col in ("worker", "node", "adapter", "inputs", "rows", "rows/s (busy)"):
        t.add_column(col, justify="right" if col in ("inputs", "rows", "rows/s (busy)") else "left")
    for name, w in sorted(s.workers.items()):
        t.add_row(name, w.node[:16], w.adapter, str(w.items), str(w.rows), f"{w.rows_per_s:.1f}")
    console.print(t)
    unit = "input files" if s.kind == "files" else "rows"
    console.print(f"{s.done} {unit} written, {s.skipped} already complete (skipped), {len(s.errors)} failed "
                  f"of {s.total}", highlight=False)
    for key, err in s.errors:
        console.print("failed: " + (err if err.startswith(key) else f"{key}: {err}"), markup=False, highlight=False)


def _resources(ray) -> dict:
    """One GPU per actor where the cluster has GPUs, else one CPU (a software adapter)."""
    from .cluster import gpus_in_cluster

    return {"num_gpus": 1} if gpus_in_cluster(ray) > 0 else {"num_cpus": 1}


def _default_workers(ray) -> int:
    from .cluster import cluster_nodes, gpus_in_cluster

    gpus = int(gpus_in_cluster(ray))
    return gpus or max(1, sum(1 for n in cluster_nodes(ray) if n.get("Alive")))


def _run_on_ray(ray, args, kind: str, todo, summary: runner.Summary, model_path: str, out: Path, live: bool) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True      # rows of a data set come back in order
    ctx.enable_progress_bars = False                 # ours shows rows/s
    ctx.print_on_execution_start = False
    workers = args.workers or _default_workers(ray)
    with progress_bar(len(todo) if kind == "files" else 0, "inputs" if kind == "files" else "rows",
                      live) as advance:
        if kind == "files":
            runner.files_ray(ray, model_path, args.adapter, todo, summary, advance, args.fail_fast,
                             workers, args.batch_size, _resources(ray))
        else:
            runner.dataset_ray(ray, model_path, args.adapter, str(Path(args.inputs).resolve()), out,
                               summary, advance, workers, args.batch_size, _resources(ray))


def main(args) -> int:
    model = Path(args.model)
    if not model.exists():
        raise UsageError(f"model not found: {args.model}")
    if args.workers and not args.ray:
        raise UsageError("--workers needs --ray (without it the batch runs in this process)")
    kind = kind_of(args.inputs)
    out = prepare_output(args.output)
    model_path = str(model.resolve())
    items = []
    if kind == "files":
        items = file_items(args.inputs, out)
        todo, done_before = pending(items)
    elif (out / DATASET_OUTPUT).exists():
        todo, done_before = [], 1
    else:
        todo, done_before = None, 0
    summary = runner.Summary(kind, "one process")
    summary.total = len(items)
    summary.skipped = done_before if kind == "files" else 0
    t0 = time.perf_counter()
    live = sys.stderr.isatty() and not args.json
    try:
        if kind == "dataset" and done_before:
            summary.where = f"nothing to do: {out / DATASET_OUTPUT} exists"
        elif kind == "files" and not todo:
            summary.where = "nothing to do: every output exists"
        elif not args.ray:
            with progress_bar(len(todo) if kind == "files" else 0, "inputs" if kind == "files" else "rows",
                              live) as advance:
                if kind == "files":
                    runner.files_local(model_path, args.adapter, todo, summary, advance, args.fail_fast)
                else:
                    runner.dataset_local(model_path, args.adapter, str(Path(args.inputs).resolve()), out,
                                         summary, advance, args.batch_size)
        else:
            from .cluster import session

            with session(args.ray) as (ray, summary.where):
                _run_on_ray(ray, args, kind, todo, summary, model_path, out, live)
    finally:
        summary.seconds = time.perf_counter() - t0
    if args.json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
    else:
        from rich.console import Console

        print_summary(summary, Console(width=None if sys.stdout.isatty() else 160))
    if summary.errors:
        return MODEL_OR_INPUT
    return OK if summary.done or summary.skipped or kind == "dataset" else CHECK_FAILED
