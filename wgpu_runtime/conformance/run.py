"""The conformance command: pick adapters, run op cases and models on each, print and report."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .. import precision as precisions
from .. import tolerance, tuning
from ..device import describe, enumerate_adapters, get_device
from ..errors import AdapterError
from ..exit_codes import UsageError
from . import op_cases
from .models import ModelUnderTest
from .report import print_table, write_report
from .results import AdapterResult, Run

POLICY = (f"errors in ULPs of max(1, |want|) per element for op cases (eps of the dtype computed: "
          f"float32 2^-23, float16 2^-10); each op's stated bound, raised to "
          f"{tolerance.ACCUMULATION_ULPS:g} ULP x sqrt(K) for ops summing K terms; integers and booleans "
          f"exact; models and intermediate tensors in ULPs of the tensor's scale max|want|, "
          f"{tolerance.MODEL.ulps:g} ULP (docs/conformance.md)")


def select_adapters(query: str | None) -> list:
    """The adapters to run on: every one found ('all'), or those matching a substring."""
    found, seen = [], set()
    for a in enumerate_adapters():
        key = describe(a)
        if key not in seen:          # some drivers list one adapter twice
            seen.add(key)
            found.append(a)
    if query in (None, "", "all"):
        if not found:
            raise AdapterError("no WebGPU adapter found (on Debian: apt-get install mesa-vulkan-drivers)")
        return found
    q = query.lower()
    chosen = [a for a in found if q in " ".join(str(a.info.get(k, "")) for k in
                                                ("backend_type", "device", "description", "vendor")).lower()]
    if not chosen:
        raise AdapterError(f"no adapter matches {query!r}; adapters found: "
                           + ("; ".join(describe(a) for a in found) or "none"))
    return chosen


def _device_query(adapter) -> str:
    """A substring that picks exactly this adapter in wgpu_runtime.device.get_device."""
    info = adapter.info
    return " ".join(str(info.get(k, "")) for k in ("backend_type", "device", "description"))


@contextlib.contextmanager
def _progress(total: int):
    """A rich progress bar on a terminal (stderr); nothing when piped."""
    if not sys.stderr.isatty():
        yield lambda: None, lambda text: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task("conformance", total=total)
        yield (lambda: prog.advance(task)), (lambda text: prog.update(task, description=text))


def run_adapter(adapter, cases, models: list[ModelUnderTest], advance, describe_step,
                precision: str = "float32") -> AdapterResult:
    info = adapter.info
    result = AdapterResult(describe(adapter), str(info.get("backend_type", "?")))
    t0 = time.perf_counter()
    try:
        device = get_device(_device_query(adapter))
    except Exception as e:  # noqa: BLE001 -- an adapter that cannot open is reported, the rest still run
        result.error = f"cannot open a device: {type(e).__name__}: {e}"
        for _ in range(len(cases) + len(models)):
            advance()
        return result
    describe_step(f"{result.backend}: op cases")
    result.cases = op_cases.run_cases(cases, device, advance, precision)
    for m in models:
        describe_step(f"{result.backend}: {Path(m.path).name}")
        result.models.append(m.check(device))
        advance()
    result.uncompiled = [f"{family} variant {name!r} (shape class {list(shape_class)}): {str(why).splitlines()[0]}"
                         for (family, shape_class, name), why in tuning.refused(device).items()]
    result.seconds = time.perf_counter() - t0
    return result


def check_args(args) -> tuple[list[str] | None, list[str]]:
    """(the --ops patterns, the registry ops they select); a usage error for options that do not fit."""
    if args.report and Path(args.report).suffix.lower() not in (".md", ".markdown", ".html", ".htm"):
        raise UsageError(f"--report {args.report}: the extension picks the format: .md or .html")
    if args.report and not Path(args.report).resolve().parent.is_dir():
        raise UsageError(f"--report {args.report}: folder {Path(args.report).parent} does not exist")
    patterns = None if args.ops is None else [p.strip() for p in args.ops.split(",") if p.strip()]
    ops = [] if args.no_ops else op_cases.select_ops(patterns)
    if patterns is not None and not ops and not args.no_ops:
        raise UsageError(f"--ops {args.ops!r} matches no registry op")
    if args.no_ops and not args.models:
        raise UsageError("nothing to run: --no-ops and no model given")
    if args.precision != "float32" and args.models:
        raise UsageError(f"--precision {args.precision} checks the registry's op cases; a model's outputs at "
                         f"{args.precision} have no bound to hold them to: run the models without it")
    return patterns, ops


def with_feature(adapters: list, precision: str) -> list:
    """The adapters that can compute at ``precision``; a usage error naming the feature when none can."""
    if precision == "float32":
        return adapters
    able = [a for a in adapters if precisions.FEATURE in a.features]
    if not able:
        raise UsageError(f"--precision {precision} needs the adapter feature {precisions.FEATURE!r}, which none of "
                         f"{', '.join(describe(a) for a in adapters)} offers")
    return able


def tolerance_record() -> dict:
    """The tolerance policy as the report's ``tolerance`` entry."""
    return {"policy": POLICY, "element_ulps_unit": "eps(dtype) * max(1, |want|)",
            "accumulation_ulps_per_sqrt_k": tolerance.ACCUMULATION_ULPS, "model_ulps": tolerance.MODEL.ulps,
            "model_ulps_unit": "eps(float32) * max|want| over the tensor", "eps": tolerance.EPS,
            "float16_precision_bound": "(K + 2) * 2^-11 * (the op on |inputs|) + 2^-14 per element, errors as "
                                       "fractions of it (--precision float16, cases that ran an f16 kernel)"}


def emit(run: Run, args) -> int:
    """Print the run (JSON or a table), write the report, and return the exit status."""
    if args.json:
        print(json.dumps(run.to_dict(), indent=2))
    else:
        from rich.console import Console

        # piped (CI logs): wide enough for one line per adapter instead of rich's default 80 columns
        print_table(run, Console(width=None if sys.stdout.isatty() else 160))
    if args.report:
        write_report(run, args.report)
    return 0 if run.passed else 1


def main(args) -> int:
    patterns, ops = check_args(args)
    cases = op_cases.case_list(ops)
    models = [ModelUnderTest(p) for p in args.models]      # a model that cannot load is a user error
    adapters = with_feature(select_adapters(args.adapter), args.precision)
    results = []
    with _progress(len(adapters) * (len(cases) + len(models))) as (advance, describe_step):
        for adapter in adapters:
            results.append(run_adapter(adapter, cases, models, advance, describe_step, args.precision))
    run = Run(results, [m.path for m in models], patterns, tolerance_record(),
              datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              args.precision)
    return emit(run, args)
