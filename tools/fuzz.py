#!/usr/bin/env python3
"""Fuzz the runtime: seeded, structure-aware mutations of models, weights, inputs and command
lines, each case in its own process with a timeout and a memory cap (tests/fuzz/).

    python tools/fuzz.py --seed 1 --cases 10000 --out fuzz-out/

Prints counts per class (ok, abort, hang, memory, escape, wrong, traceback); with --out, writes
each failing case's files and summary.json there. Exit status 1 when any case failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: an installed wgpu_runtime first

from tests.fuzz import mutations, runner  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="the run's seed (case i is drawn from seed:i)")
    p.add_argument("--cases", type=int, default=200, help="how many cases")
    p.add_argument("--workers", type=int, default=2, help="cases run at once")
    p.add_argument("--adapter", default="vulkan", help="adapter substring (default vulkan)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case before it counts as a hang")
    p.add_argument("--mem-gib", type=float, default=runner.MEM_BYTES / 2 ** 30, help="address-space cap per case")
    p.add_argument("--only", help="comma-separated mutation names (default: all, weighted)")
    p.add_argument("--ids", help="comma-separated case numbers to run again (e.g. a long run's failures)")
    p.add_argument("--out", type=Path, help="write failing cases and summary.json here")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(sorted(mutations.MUTATIONS)))
        return 0
    only = [m.strip() for m in args.only.split(",")] if args.only else None
    unknown = [m for m in only or [] if m not in mutations.MUTATIONS]
    if unknown:
        p.error(f"unknown mutations: {', '.join(unknown)}")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="wgpu-fuzz-") as tmp:
        work = args.work or Path(tmp)
        ids = [int(i) for i in args.ids.split(",")] if args.ids else None
        run = runner.Run(args.seed, args.cases, work, args.workers, args.adapter, args.timeout,
                         int(args.mem_gib * 2 ** 30), only, ids)

        done = []

        def show(o):
            done.append(o)
            if o.verdict != "ok":
                print(f"case {o.case.id} {o.case.mutation} ({o.case.seed_kind}): {o.verdict}: {o.detail[:200]}",
                      file=sys.stderr, flush=True)
            if args.out and len(done) % 100 == 0:       # a long run's progress, readable while it runs
                args.out.mkdir(parents=True, exist_ok=True)
                partial = runner.summarize(done, args.seed, started)
                (args.out / "summary.partial.json").write_text(json.dumps(partial, indent=1))
        outcomes = run.run(progress=show)
        summary = runner.summarize(outcomes, args.seed, started)
        if args.out:
            runner.keep_failures(outcomes, args.out, summary)
    print(json.dumps({k: summary[k] for k in ("seed", "cases", "seconds", "counts")}, indent=1))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
