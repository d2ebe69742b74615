"""Command line: python -m wgpu_runtime {adapters, info, run, bench, convert, conformance} (also the
`wgpu-runtime` script). Results go to stdout; log lines (-q / -v) and errors to stderr; the exit
statuses are those of exit_codes.py."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from .cli_args import non_negative_float, non_negative_int, positive_int
from . import logs
from .errors import GraphError, InputError, WgpuRuntimeError
from .exit_codes import CHECK_FAILED, EPILOG, OK, UsageError, exit_code
from .precision import PRECISIONS

logger = logging.getLogger(f"{logs.ROOT}.cli")      # not __name__: under `python -m` it is "__main__"


def _console(stderr=False):
    from rich.console import Console

    return Console(stderr=stderr)


def _dump_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


# ------------------------------------------------------------------------------------ adapters
def cmd_adapters(args) -> int:
    from rich.table import Table

    from .device import enumerate_adapters

    adapters = enumerate_adapters()
    if args.json:
        _dump_json([{"backend": a.info["backend_type"], "device": a.info["device"],
                     "description": a.info["description"], "type": a.info["adapter_type"],
                     "vendor": a.info.get("vendor", ""), "features": sorted(a.features)} for a in adapters])
        return OK if adapters else CHECK_FAILED
    table = Table(title="WebGPU adapters")
    for col in ("#", "backend", "device", "description", "type", "timestamps", "f16"):
        table.add_column(col)
    for i, a in enumerate(adapters):
        info = a.info
        table.add_row(str(i), info["backend_type"], info["device"], info["description"], info["adapter_type"],
                      "yes" if "timestamp-query" in a.features else "no",
                      "yes" if "shader-f16" in a.features else "no")
    _console().print(table)
    return OK if adapters else CHECK_FAILED


# ---------------------------------------------------------------------------------------- info
def _shape(shape):
    return None if shape is None else [None if d is None or d < 0 else int(d) for d in shape]


def _layers_info(model) -> dict:
    trainable = sum(int(w.value.size) for w in model.trainable_weights)
    total = model.count_params()
    return {"path": model.meta.get("path"), "format": "layers-model", "name": model.name,
            "generated_by": model.meta.get("generatedBy"),
            "inputs": [{"name": i["name"], "shape": _shape(i["shape"]), "dtype": i["dtype"]} for i in model.inputs],
            "outputs": [{"name": o["name"], "shape": _shape(o["shape"])} for o in model.outputs],
            "layers": [{"name": l.name, "class_name": l.class_name, "params": l.count_params()} for l in model.layers],
            "params": {"total": total, "trainable": trainable, "non_trainable": total - trainable}}


def _graph_info(art) -> dict:
    from .ops import registry

    sig = art.signature
    specs = {kind: [{"key": key, "name": s.name, "dtype": s.dtype, "shape": _shape(s.shape)}
                    for key, s in (getattr(sig, kind) if sig else {}).items()] for kind in ("inputs", "outputs")}
    ops = Counter(n.op for n in art.nodes)
    rows = []
    for op, count in ops.most_common():
        d = registry.get(op)
        rows.append({"op": op, "count": count,
                     "runs_on": None if op in ("Const", "Placeholder") else (None if d is None else d.runs_on),
                     "supported": op in ("Const", "Placeholder") or d is not None})
    missing = registry.missing_ops(n for n in art.nodes if n.op not in ("Const", "Placeholder"))
    return {"path": str(art.path), "format": art.format, "generated_by": art.generated_by,
            "converted_by": art.converted_by, **specs,
            "weights": {"tensors": len(art.weights),
                        "bytes": sum(int(np.asarray(w).nbytes) for w in art.weights.values())},
            "nodes": len(art.nodes), "ops": rows, "unsupported": sorted(missing)}


def cmd_info(args) -> int:
    from .format import load_artifacts

    _check_model_path(args.model)
    art = load_artifacts(args.model)
    if art.format == "layers-model":
        from .layers import load_layers_model

        model = load_layers_model(args.model)
        if args.json:
            _dump_json(_layers_info(model))
        else:
            model.summary(print_fn=print)
        return OK
    info = _graph_info(art)
    if not info["unsupported"]:
        info.update(_dispatch_counts(art, getattr(args, "adapter", None)))
    if args.json:
        _dump_json(info)
    else:
        _print_graph_info(info)
        if not info["unsupported"]:
            before, after = info["dispatches_unoptimized"], info["dispatches_optimized"]
            _console().print(f"  dispatches per inference (batch 1): {_count(before)} as the file has it, "
                             f"{_count(after)} after the load-time optimizer")
    return CHECK_FAILED if info["unsupported"] else OK


def _count(n) -> str:
    return "? (control flow or data-dependent shapes)" if n is None else str(n)


def _dispatch_counts(art, adapter=None) -> dict:
    """Kernel launches of one inference on seeded batch-1 inputs, with the load-time optimizer off
    and on (None: the model runs node by node on the dynamic executor, not as one plan)."""
    from .device import get_device
    from .graph.model import GraphModel
    from .inputs import random_inputs

    out = {}
    for key, optimize in (("dispatches_unoptimized", False), ("dispatches_optimized", True)):
        model = GraphModel(art, get_device(adapter), optimize=optimize)
        out[key] = None
        if not model.is_dynamic:
            try:
                out[key] = model.prepare(random_inputs(model.inputs, 1))[0].dispatches
            except (WgpuRuntimeError, ValueError, TypeError):   # e.g. data-dependent shapes, found while planning
                out[key] = None
    return out


def _print_graph_info(info: dict) -> None:
    from rich.table import Table

    con = _console()
    con.print(f"[bold]{info['path']}[/]  {info['format']}  generated by {info['generated_by']}, "
              f"converted by {info['converted_by']}")
    for kind in ("inputs", "outputs"):
        for s in info[kind]:
            shape = s["shape"] if s["shape"] is not None else "?"
            con.print(f"  {kind[:-1]} {s['key']}: {s['name']} {s['dtype']} {shape}")
    con.print(f"  weights: {info['weights']['tensors']} tensors, {info['weights']['bytes'] / 1e6:.2f} MB decoded")
    table = Table(title=f"{info['nodes']} nodes, {len(info['ops'])} ops")
    table.add_column("op")
    table.add_column("count", justify="right")
    table.add_column("runs on")
    for row in info["ops"]:
        where = "-" if row["op"] in ("Const", "Placeholder") else (row["runs_on"] or "[red]unsupported[/]")
        table.add_row(row["op"], str(row["count"]), where)
    con.print(table)


# ----------------------------------------------------------------------------------------- run
def _parse_inputs(items) -> dict:
    feeds = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--input takes NAME=FILE.npy, got {item!r}")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise UsageError(f"--input {name}: file not found: {path}") from None
        except (OSError, ValueError) as e:
            raise WgpuRuntimeError(f"cannot read input {name!r} from {path}: {e}") from None
    return feeds


def _check_model_path(path) -> None:
    """A model argument that names nothing is a usage error (2); a file that is not a model, 3."""
    if path is not None and not Path(path).exists():
        raise UsageError(f"model not found: {path}")


def _check_writable(option: str, path: str | None) -> None:
    """Fail before the work, not after it, when an output file cannot be written there."""
    if path and path != "-":
        if "\x00" in path:
            raise UsageError(f"{option} {path!r}: a file name cannot hold a NUL byte")
        folder = Path(path).resolve().parent
        if not folder.is_dir():
            raise UsageError(f"{option} {path}: folder {Path(path).parent} does not exist")
        if Path(path).is_dir():
            raise UsageError(f"{option} {path}: is a folder, not a file")


def output_stats(name: str, y: np.ndarray) -> dict:
    row = {"name": name, "shape": list(y.shape), "dtype": str(y.dtype)}
    if y.size and y.dtype.kind in "fiub":
        v = y.astype(np.float64)
        finite = np.isfinite(v)
        row.update(min=float(v.min()), max=float(v.max()), mean=float(v.mean()), std=float(v.std()),
                   nonfinite=int(v.size - finite.sum()))
    return row


def _write_npz(target: str, arrays: dict) -> None:
    if target == "-":                         # the archive on stdout (binary), e.g. | python -c 'np.load(...)'
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        sys.stdout.flush()
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.buffer.flush()
        return
    out = Path(target)
    tmp = out.with_name(out.name + ".partial.npz")
    try:
        np.savez(tmp, **arrays)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"--output {target}: cannot write it: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cmd_run(args) -> int:
    from .loading import load_model

    _tuning(args)

    if args.json and args.output == "-":
        raise UsageError("--json and --output - both write to stdout: give --output a file")
    _check_model_path(args.model)
    _check_writable("--output", args.output)
    feeds = _parse_inputs(args.input)
    model = load_model(args.model, args.adapter, precision=args.precision)
    layers = not hasattr(model, "execute")
    if not feeds:
        known = model.input_names if layers else [f"{s.name} {list(s.shape or [])}" for s in model.inputs]
        raise UsageError("give the inputs with --input NAME=FILE.npy; the model's inputs: " + ", ".join(known))
    if layers:                      # a Keras-style model: inputs by layer name, all outputs
        if args.outputs:
            raise UsageError("--outputs selects graph model tensors; a layers model returns all its outputs")
        names = model.output_names
        outs = model.predict(feeds, verbose=0)
        outs = outs if isinstance(outs, list) else [outs]
    else:
        names = [n.strip() for n in args.outputs.split(",") if n.strip()] if args.outputs else \
            [s.name for s in model.outputs]
        outs = model.execute(feeds, names)
    stats = [output_stats(n, y) for n, y in zip(names, outs)]
    if args.json:
        _dump_json({"model": str(args.model), "outputs": stats, "written": args.output})
    else:
        con = _console(stderr=args.output == "-")
        for row in stats:
            text = (f" min {row['min']:.6g} max {row['max']:.6g} mean {row['mean']:.6g}" if "min" in row else "")
            con.print(f"{row['name']}: {row['dtype']} {row['shape']}{text}", highlight=False)
    if args.output:
        _write_npz(args.output, {n: y for n, y in zip(names, outs)})
        logger.info("wrote %s", "stdout" if args.output == "-" else args.output)
    return OK


# --------------------------------------------------------------------------------------- bench
@contextlib.contextmanager
def _random_inputs_hint(random: bool):
    """A model that refuses bench's random inputs (inputs.random_inputs: unknown dimensions 1,
    the first one --batch) says so, and how to give real ones."""
    try:
        yield
    except (GraphError, InputError) as e:
        if random and e.args and isinstance(e.args[0], str):
            e.args = (f"{e.args[0]} (with bench's random inputs: unknown dimensions 1, the first --batch; "
                      "give real ones with --input NAME=FILE.npy)", *e.args[1:])
        raise


def cmd_bench(args) -> int:
    from .bench import bench
    from .models import default_model_path

    _tuning(args)

    _check_model_path(args.model)
    if args.dynamic_batching is not None and not args.concurrency:
        raise UsageError("--dynamic-batching times calls in flight: give --concurrency N too")
    for option in ("save", "plot", "trace"):
        _check_writable(f"--{option}", getattr(args, option))
    baseline = None
    if args.compare:
        from .bench_compare import load_record

        baseline = load_record(args.compare)           # a wrong file fails before the run
    path = args.model or default_model_path()
    feeds = _parse_inputs(args.input) or None
    live = logs.live_progress(args.json)
    with _random_inputs_hint(feeds is None):
        if not live:
            result = bench(path, args.adapter, args.runs, args.warmup, args.batch, feeds=feeds,
                           concurrency=args.concurrency, dynamic_batching=args.dynamic_batching,
                           precision=args.precision)
        else:
            from rich.progress import Progress

            with Progress(console=_console(stderr=True), transient=True) as prog:
                task = prog.add_task("benchmarking", total=args.runs + args.warmup)
                result = bench(path, args.adapter, args.runs, args.warmup, args.batch,
                               progress=lambda: prog.advance(task), feeds=feeds, concurrency=args.concurrency,
                               dynamic_batching=args.dynamic_batching, precision=args.precision)
    if args.first_inference:
        from .first_inference import measure

        result.first_new_process = measure(str(path), args.adapter, args.batch, tune=not args.no_tune,
                                           precision=args.precision)
    record = result.to_dict()
    if args.save:
        _save_json(args.save, record)
    comparison = None
    if baseline is not None:
        from .bench_compare import compare

        comparison = compare(baseline, record, args.threshold / 100.0, str(args.compare))
    if args.plot:
        _plot(record, args.plot)
    if args.trace:
        if result.profile is None:
            raise UsageError("--trace: this model runs on the dynamic executor: no per-dispatch profile")
        _save_json(args.trace, result.profile.trace())
        logger.info("wrote %s (open in ui.perfetto.dev or chrome://tracing)", args.trace)
    if args.json:
        _dump_json({**record, "comparison": comparison} if comparison else record)
    else:
        _print_bench(result)
        if comparison:
            _print_comparison(comparison)
        if args.profile and result.profile is not None:
            sys.stdout.write(result.profile.table() + "\n")
    if args.save:
        logger.info("saved %s", args.save)
    if comparison and args.fail_on_regression and comparison["verdict"] == "regression":
        return CHECK_FAILED
    return OK


def _plot(record: dict, path: str) -> None:
    try:
        from .plots import save_bench_plot
    except ImportError as e:
        raise UsageError(f"--plot: the plotting module is not available ({e})") from None
    save_bench_plot(record, path)
    logger.info("wrote %s", path)


def _save_json(path: str, obj) -> None:
    out = Path(path)
    tmp = out.with_name(out.name + ".partial")
    try:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _print_bench(r) -> None:
    from rich.table import Table

    con = _console()
    t = Table(title=f"{Path(r.model).parent.name}/{Path(r.model).name} on {r.adapter}", show_header=False)
    rows = [("batch", r.batch), ("load", f"{r.load_ms:.1f} ms"),
            ("first inference", f"{r.first_ms:.1f} ms ({r.pipelines_compiled} pipelines compiled)"),
            ("median", f"{r.median_ms:.2f} ms"), ("min", f"{r.min_ms:.2f} ms"), ("p90", f"{r.p90_ms:.2f} ms"),
            ("p99", f"{r.p99_ms:.2f} ms"), ("stddev", f"{r.stddev_ms:.2f} ms"),
            ("throughput", f"{r.inferences_per_s:.1f} inferences/s"),
            ("timed runs", f"{r.runs} (after {r.warmup} warm-up runs discarded)"),
            ("weights", f"{r.weight_bytes / 1e6:.2f} MB")]
    if r.executor == "static":
        rows += [("dispatches", f"{r.dispatches} ({r.encode_us_per_dispatch:.1f} µs host encoding each, "
                                f"{r.encode_waited_us:.0f} µs per call before its submit)"),
                 ("peak activations", f"{r.peak_activation_bytes / 1e6:.2f} MB")]
    else:
        rows.append(("executor", "chunked (a tensor over the storage-binding limit): whole runs timed"
                     if r.executor == "chunked" else "dynamic (control flow / data-dependent shapes): whole runs timed"))
    if r.concurrency:
        rows.append((f"{r.concurrency} in flight", f"{r.concurrent_inferences_per_s:.1f} inferences/s, "
                     f"median {r.concurrent_median_ms:.2f} ms per call"))
    if r.dynamic_batching:
        rows.append((f"{r.concurrency} in flight, dynamic batching ≤ {r.dynamic_batching}",
                     f"{r.batched_inferences_per_s:.1f} inferences/s, median {r.batched_median_ms:.2f} ms per call, "
                     f"{r.batched_mean_rows or 0:.1f} rows per batch"))
    for kind, f in (r.first_new_process or {}).items():
        if isinstance(f, dict):
            rows.append((f"new process, {kind} shader caches", f"{f['process_to_first_result_ms']:.0f} ms to the first "
                         f"result (load {f['load_ms']:.0f} ms, first inference {f['first_inference_ms']:.0f} ms)"))
    if r.gpu_ms_total is not None:
        rows.append(("GPU time (timestamps)", f"{r.gpu_ms_total:.2f} ms"))
    if r.passed_over:
        rows.append(("variants passed over", "; ".join(sorted({f"{v['family']} {v['variant']!r}" for v in r.passed_over}))
                     + " (their kernels do not compile on this adapter: --json has the errors)"))
    rows.append(("driver", f"{r.driver} (wgpu {r.wgpu_version})"))
    rows.append(("machine", f"{r.machine.get('cpu')}, {r.machine.get('cores')} cores, {r.machine.get('os')}"))
    for k, v in rows:
        t.add_row(k, str(v))
    con.print(t)
    if r.top_ops:
        ops = Table(title="GPU time by op (timestamp queries, one profiled run)")
        for col in ("op", "dispatches", "ms", "share"):
            ops.add_column(col, justify="right" if col != "op" else "left")
        for row in r.top_ops[:12]:
            ops.add_row(row["op"], str(row["count"]), f"{row['gpu_ms']:.2f}", f"{100 * row['share']:.1f}%")
        con.print(ops)


def _print_comparison(c: dict) -> None:
    from rich.table import Table

    con = _console()
    t = Table(title=f"compared with {c['baseline']} ({c.get('baseline_created') or 'undated'}); "
                    f"'same' within {100 * c['threshold']:g}%")
    for col in ("metric", "baseline", "this run", "ratio", "verdict"):
        t.add_column(col, justify="left" if col in ("metric", "verdict") else "right")
    colors = {"worse": "red", "better": "green"}
    for row in c["rows"]:
        fmt = (lambda v: "-" if v is None else f"{v:.3f}")
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}x"
        verdict = row["verdict"]
        t.add_row(row["metric"], fmt(row["old"]), fmt(row["new"]), ratio,
                  f"[{colors[verdict]}]{verdict}[/]" if verdict in colors else verdict)
    con.print(t)
    for note in c["notes"]:
        con.print(f"note: {note}", highlight=False)
    con.print(f"verdict: {c['verdict']} (median time)", highlight=False)


def _tuning(args) -> None:
    if getattr(args, "no_tune", False):
        from . import tuning

        tuning.set_enabled(False)


# -------------------------------------------------------------------------------------- parser
def add_verbosity(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-q / -v; on a subcommand they default to what was given before it."""
    default = 0 if top else argparse.SUPPRESS
    p.add_argument("-v", "--verbose", action="count", default=default,
                   help="more log lines on stderr: -v info, -vv debug (and the traceback of unexpected errors)")
    p.add_argument("-q", "--quiet", action="count", default=default, help="errors only: no warnings")


def _version() -> str:
    from . import __version__

    try:
        from importlib.metadata import version

        wgpu_version = version("wgpu")
    except Exception:  # noqa: BLE001 -- a version string is best effort
        wgpu_version = "?"
    return f"wgpu-runtime {__version__} (wgpu {wgpu_version}, Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wgpu-runtime", description="Run TensorFlow.js models on WebGPU.",
                                epilog=EPILOG)
    p.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    add_verbosity(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, text):
        s = sub.add_parser(name, help=text, description=text, epilog=EPILOG)
        add_verbosity(s)
        return s

    adapter_help = "the adapter: a substring of its backend, device or description (vulkan, gl, ...); " \
                   "default: wgpu's choice"
    a = command("adapters", "list the WebGPU adapters found")
    a.add_argument("--json", action="store_true", help="a JSON list on stdout")
    i = command("info", "describe a model: inputs, outputs, ops and where they run (a layers model: its summary)")
    i.add_argument("model", help="model.json or its folder (graph or layers model)")
    i.add_argument("--json", action="store_true", help="one JSON object on stdout")
    i.add_argument("--adapter", help=adapter_help + " (where the dispatches are counted)")
    r = command("run", "run a model (graph or layers) on .npy inputs")
    r.add_argument("model", help="model.json or its folder (graph or layers model)")
    r.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="an input, by signature key, tensor or node name (a layers model: input layer name); "
                        "repeat for each input")
    r.add_argument("--output", metavar="OUT.npz", help="write the outputs to a .npz file ('-': to stdout)")
    r.add_argument("--outputs", metavar="NAMES", help="comma-separated output names of a graph model (default: all)")
    r.add_argument("--adapter", help=adapter_help)
    r.add_argument("--json", action="store_true",
                   help="the outputs' names, shapes, dtypes and min/max/mean/std as one JSON object on stdout")
    b = command("bench", "benchmark a model, graph or layers (default: the embedded MobileNetV2 0.35 128)")
    b.add_argument("model", nargs="?", help="model.json or its folder (default: the embedded model)")
    b.add_argument("--adapter", help=adapter_help)
    b.add_argument("--runs", type=positive_int, default=20, help="timed runs (default 20)")
    b.add_argument("--warmup", type=non_negative_int, default=3,
                   help="runs discarded before timing, after the first inference (default 3)")
    b.add_argument("--batch", type=positive_int, default=None,
                   help="rows per inference for the generated inputs (default 1); with --input the inputs' "
                        "first dimension is the batch, and is what the result reports")
    b.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="inputs to time (default: seeded random inputs of the model's shapes)")
    b.add_argument("--concurrency", type=positive_int, default=None, metavar="N",
                   help="also time --runs calls with N in flight (async): throughput and latency per call")
    b.add_argument("--dynamic-batching", type=positive_int, default=None, metavar="B",
                   help="with --concurrency: time the calls in flight again with dynamic batching on "
                        "(batches of at most B rows)")
    b.add_argument("--json", action="store_true", help="one JSON object on stdout")
    b.add_argument("--save", metavar="FILE.json", help="also write the result (the --json object) to FILE.json")
    b.add_argument("--compare", metavar="FILE.json",
                   help="compare with a result saved by --save: per metric baseline, this run, ratio, verdict")
    b.add_argument("--threshold", type=non_negative_float, default=5.0, metavar="PCT",
                   help="with --compare: a change within PCT percent is 'same' (default 5)")
    b.add_argument("--fail-on-regression", action="store_true",
                   help="with --compare: exit status 1 when the median time got worse beyond --threshold")
    b.add_argument("--first-inference", action="store_true",
                   help="also time the first inference of two new processes: cold, then warm driver shader caches")
    for s in (r, b):
        s.add_argument("--no-tune", action="store_true",
                       help="ignore the tuning cache (`tune`): every kernel runs its default variant")
        s.add_argument("--precision", choices=PRECISIONS, default="float32",
                       help="a graph model's arithmetic: float16 runs the matmuls and convolutions in f16 "
                            "where the adapter has shader-f16 (default float32)")
    b.add_argument("--plot", metavar="FILE.png",
                   help="draw per-node GPU time and the run-time distribution (.png, .svg, .pdf; needs matplotlib)")
    b.add_argument("--profile", action="store_true",
                   help="also print the GPU time of every node and the host time of each phase (one profiled run)")
    b.add_argument("--trace", metavar="FILE.json",
                   help="write the profiled run as a Chrome trace (ui.perfetto.dev, chrome://tracing): "
                        "host phases and GPU dispatches on two tracks")
    for module in PLUGGED:
        name, handler = importlib.import_module(module, __package__).add_subcommand(sub)
        COMMANDS[name] = handler
        if name != "convert":        # convert parses its own flags (tensorflowjs_converter's: -v is --version)
            add_verbosity(sub.choices[name])
            sub.choices[name].epilog = sub.choices[name].epilog or EPILOG
    return p


COMMANDS = {"adapters": cmd_adapters, "info": cmd_info, "run": cmd_run, "bench": cmd_bench}
# Subcommands that live with their feature: each module has add_subcommand(subparsers) -> (name,
# handler) and keeps its heavy imports (TensorFlow for convert) inside the handler.
PLUGGED = [".convert.cli", ".conformance", ".tune_cli", ".batch"]


def _one_line(error: BaseException) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return "; ".join(lines) or type(error).__name__


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(getattr(args, "verbose", 0) - getattr(args, "quiet", 0))
    try:
        return _run_command(args)
    finally:
        logs.reset()


def _run_command(args) -> int:
    try:
        return COMMANDS[args.command](args)
    except WgpuRuntimeError as e:
        logger.debug("traceback", exc_info=True)
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return exit_code(e)
    except KeyboardInterrupt as e:
        print("error: interrupted", file=sys.stderr)
        return exit_code(e)
    except Exception as e:  # noqa: BLE001 -- GPU/driver failures, bugs: one line, the traceback with -v
        logger.info("traceback of the error below", exc_info=True)
        hint = "" if logging.getLogger(logs.ROOT).isEnabledFor(logging.INFO) else " (-v shows the traceback)"
        print(f"error: {type(e).__name__}: {_one_line(e)}{hint}", file=sys.stderr)
        return exit_code(e)


if __name__ == "__main__":
    sys.exit(main())
