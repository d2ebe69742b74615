"""Seeded fuzzing runs: build the seeds, draw and write the cases, run them on a pool of workers
(tests/fuzz/worker.py, each case in its own forked process under a timeout and a memory cap),
and judge every outcome into one class:

ok, abort (a signal), hang (the timeout), memory (MemoryError / the cap / a leak), escape (a file
outside the model folder read), wrong (a changed answer, or a bad model accepted), traceback (a
raw traceback, an exception not ours, or a misleading message), debris (left by a killed convert,
tests/test_fuzz.py).
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import mutations, seeds

CLASSES = ("ok", "abort", "hang", "memory", "escape", "wrong", "traceback")
ROOT = Path(__file__).resolve().parents[2]
RTOL, ATOL = 1e-4, 1e-6      # float32 sums in another order (conv, mean, matmul) vs the float32 oracle
MEM_BYTES = 4 << 30          # address space per case: ~1.4 GiB is the device's own mapping
_RAW_TYPE = re.compile(r"^error: [A-Za-z_][\w.]*(Error|Exception|Interrupt|Warning)\b")


@dataclass
class Case:
    id: int
    seed_kind: str
    mutation: str
    expect: str
    action: str
    dir: str
    model: str
    canary: str
    adapter: str
    timeout: float
    mem_bytes: int
    feed_by_name: bool = False
    predict_kwargs: dict | None = None
    argv: list | None = None
    exit: tuple = (0,)
    threads: int = 2
    repeats: int = 8
    batching: bool = False          # threads: with the model's dynamic batching on


@dataclass
class Outcome:
    case: Case
    verdict: str
    detail: str
    seconds: float


class Oracle:
    """The expected outputs of an unmutated seed for given inputs: the registry's numpy
    references (graph: wgpu_runtime.conformance.reference on the file's nodes; layers: the same
    Dense/ReLU/softmax in numpy)."""

    def __init__(self, graph_path: Path, layers_path: Path):
        from wgpu_runtime.format import load_artifacts
        from wgpu_runtime.graph.graph import Graph

        self.graph_art = load_artifacts(graph_path)
        self.graph = Graph(self.graph_art.nodes)
        self.layers_w = load_artifacts(layers_path).weights

    def __call__(self, kind: str, x: np.ndarray) -> np.ndarray:
        if kind == "graph":
            from wgpu_runtime.conformance.reference import evaluate

            with np.errstate(all="ignore"):
                return evaluate(self.graph, self.graph_art.weights, {"x": x}, [("Identity", 0)])[("Identity", 0)]
        w = self.layers_w
        with np.errstate(all="ignore"):
            h = np.maximum(x @ w["d1/kernel"] + w["d1/bias"], np.float32(0))
            h = np.where(np.isnan(h), np.float32(np.nan), h)
            z = h @ w["d2/kernel"] + w["d2/bias"]
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class Run:
    """One fuzzing run: ``cases`` cases drawn from ``seed``, files under ``work``."""

    def __init__(self, seed: int, cases: int, work: Path, workers: int = 2, adapter: str = "vulkan",
                 timeout: float = 60.0, mem_bytes: int = MEM_BYTES, only: list[str] | None = None,
                 ids: list[int] | None = None):
        """``ids``: run only these case numbers (a failure found by a long run, again)."""
        self.seed, self.n, self.work, self.workers = seed, cases, Path(work), workers
        self.ids = list(ids) if ids is not None else list(range(cases))
        self.adapter, self.timeout, self.mem_bytes, self.only = adapter, timeout, mem_bytes, only
        self.work.mkdir(parents=True, exist_ok=True)
        self.seed_dir = self.work / "seeds"
        self.canary = self.work / "canary"
        self.canary.mkdir(exist_ok=True)
        (self.canary / "secret.txt").write_text("nothing in a model folder may read this\n")
        self.graph_seed = seeds.graph_model(self.seed_dir / "graph", signature=True).parent
        self.layers_seed = seeds.layers_model(self.seed_dir / "layers").parent
        self.oracle = Oracle(self.graph_seed, self.layers_seed)

    # -- cases -------------------------------------------------------------------------------
    def draw(self, i: int) -> tuple[Case, np.ndarray | None, mutations.Spec]:
        rng = random.Random(f"{self.seed}:{i}")
        kind = rng.choice(["graph", "graph", "layers"])
        name = rng.choice(self.only) if self.only else mutations.pick(rng)
        folder = self.work / "cases" / f"{i:06d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        model_dir = folder / "model"
        shutil.copytree(self.graph_seed if kind == "graph" else self.layers_seed, model_dir, symlinks=True)
        spec = mutations.MUTATIONS[name](rng, mutations.Model(model_dir, kind, self.canary))
        default = seeds.graph_input() if kind == "graph" else seeds.layers_input()
        inputs = spec.inputs if spec.inputs is not None else {"x": default}
        np.savez(folder / "inputs.npz", **inputs)
        x = next(iter(inputs.values()))
        case = Case(id=i, seed_kind=kind, mutation=name, expect=spec.expect, action=spec.action, dir=str(folder),
                    model=str(model_dir), canary=str(self.canary), adapter=self.adapter, timeout=self.timeout,
                    mem_bytes=self.mem_bytes, feed_by_name=spec.feed_by_name, predict_kwargs=spec.predict_kwargs,
                    argv=spec.argv, exit=tuple(spec.exit), **spec.extra)
        return case, x, spec

    # -- running -----------------------------------------------------------------------------
    def run(self, progress=None) -> list[Outcome]:
        drawn = {i: self.draw(i) for i in self.ids}
        queue = list(self.ids)
        lock = threading.Lock()
        outcomes: dict[int, Outcome] = {}

        def worker_loop():
            proc = _start_worker()
            try:
                while True:
                    with lock:
                        if not queue:
                            return
                        i = queue.pop(0)
                    case, x, _ = drawn[i]
                    proc.stdin.write(json.dumps(asdict(case)) + "\n")
                    proc.stdin.flush()
                    line = proc.stdout.readline()
                    if not line:                       # the worker itself died: restart it
                        proc = _start_worker()
                        outcomes[i] = Outcome(case, "abort", "the worker process died", 0.0)
                        continue
                    report = json.loads(line)
                    outcomes[i] = self.judge(case, x, report)
                    if progress:
                        progress(outcomes[i])
            finally:
                proc.stdin.close()
                proc.wait()
        threads = [threading.Thread(target=worker_loop) for _ in range(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [outcomes[i] for i in self.ids]

    # -- judging -----------------------------------------------------------------------------
    def judge(self, case: Case, x, report: dict) -> Outcome:
        folder = Path(case.dir)
        secs = report.get("seconds", 0.0)

        def out(verdict, detail=""):
            return Outcome(case, verdict, detail, secs)
        if report["timed_out"]:
            return out("hang", f"no answer within {case.timeout:g} s")
        if report["signal"] is not None:
            return out("abort", f"killed by signal {report['signal']}")
        result_file = folder / "result.json"
        if not result_file.exists():
            return out("abort", f"no result (exit {report['exit']})")
        r = json.loads(result_file.read_text())
        stderr = (folder / "stderr.txt").read_text(errors="replace")
        if r.get("escapes"):
            return out("escape", "; ".join(r["escapes"][:3]))
        if r["status"] == "memory":
            return out("memory", r.get("message", ""))
        if r["status"] == "wrong":
            return out("wrong", r.get("message", ""))
        if r["status"] == "exception":
            return out("traceback", f"{r['type']}: {r['message'][:300]}")
        if "Traceback (most recent call last)" in stderr:
            return out("traceback", stderr[-300:])
        if r["status"] == "error":
            bad = _misleading(r["message"])
            if bad:
                return out("traceback", bad)
            if case.expect == "same":
                return out("wrong", f"refused a model that must give the same answer: {r['type']}: "
                                    f"{r['message'][:300]}")
            return out("ok", f"{r['type']}: {r['message'][:200]}")
        if case.action == "cli":
            return self._judge_cli(case, r, stderr, out)
        if case.expect == "reject":
            return out("wrong", "accepted a model or call that must be refused")
        if case.expect == "same":
            return self._compare(case, x, out)
        return out("ok")

    def _judge_cli(self, case, r, stderr, out) -> Outcome:
        rc = r.get("rc")
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:") or ": error:" in ln]
        if rc not in case.exit:
            return out("wrong", f"exit status {rc}, expected one of {case.exit}: {' | '.join(lines[-2:])[:300]}")
        if rc not in (0, 1) and not errors:
            return out("traceback", f"exit status {rc} without an error line: {stderr[-200:]}")
        if any(_RAW_TYPE.match(ln) for ln in errors):
            return out("traceback", f"an unexpected exception: {errors[-1][:300]}")
        for ln in errors:
            bad = _misleading(ln)
            if bad:
                return out("traceback", bad)
        return out("ok", errors[-1][:200] if errors else "")

    def _compare(self, case: Case, x, out) -> Outcome:
        got = np.load(Path(case.dir) / "outputs.npz")
        got = [got[k] for k in got.files]
        if len(got) != 1:
            return out("wrong", f"{len(got)} outputs, the model has 1")
        want = self.oracle(case.seed_kind, np.asarray(x, np.float32))
        y = got[0]
        if y.shape != want.shape:
            return out("wrong", f"output shape {y.shape}, expected {want.shape}")
        if not np.array_equal(np.isnan(y), np.isnan(want)):
            return out("wrong", f"NaN at {int(np.isnan(y).sum())} places, TensorFlow's answer at "
                                f"{int(np.isnan(want).sum())}")
        finite = np.isfinite(want)
        if not np.array_equal(y[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)]) or \
                not np.allclose(y[finite], want[finite], rtol=RTOL, atol=ATOL):
            return out("wrong", f"max abs difference {np.nanmax(np.abs(y - want)):.3g}")
        return out("ok")


def _misleading(message: str) -> str:
    """A message that names as known the very name it refuses."""
    m = re.search(r"unknown (input|output) '([^']*)'.*are: (.*)$", message)
    if m and m.group(2) in [s.strip() for s in m.group(3).split(",")]:
        return f"misleading message: {message[:300]}"
    return ""


def _start_worker() -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR") or _runtime_dir()}
    return subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker"], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _runtime_dir() -> str:
    path = Path(tempfile.gettempdir()) / f"xdg-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return str(path)


def summarize(outcomes: list[Outcome], seed: int, started: float) -> dict:
    counts = Counter(o.verdict for o in outcomes)
    return {"seed": seed, "cases": len(outcomes), "seconds": round(time.time() - started, 1),
            "counts": {c: counts.get(c, 0) for c in CLASSES},
            "by_mutation": {m: dict(Counter(o.verdict for o in outcomes if o.case.mutation == m))
                            for m in sorted({o.case.mutation for o in outcomes})},
            "failures": [{"id": o.case.id, "class": o.verdict, "mutation": o.case.mutation,
                          "seed_kind": o.case.seed_kind, "expect": o.case.expect, "detail": o.detail,
                          "argv": o.case.argv, "dir": o.case.dir}
                         for o in outcomes if o.verdict != "ok"]}


def keep_failures(outcomes: list[Outcome], out: Path, summary: dict) -> None:
    """Copy each failing case's folder (model files, inputs, stdout/stderr, result) under ``out``
    and write ``summary.json`` there."""
    out.mkdir(parents=True, exist_ok=True)
    for o in outcomes:
        if o.verdict != "ok":
            dest = out / f"{o.case.id:06d}-{o.verdict}-{o.case.mutation}"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(o.case.dir, dest, symlinks=True, ignore=_skip_special)
            (dest / "case.json").write_text(json.dumps(asdict(o.case), indent=1))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


def _skip_special(folder, names):
    return [n for n in names if not (os.path.islink(os.path.join(folder, n))
                                     or os.path.isdir(os.path.join(folder, n))
                                     or os.path.isfile(os.path.join(folder, n)))
            or (os.path.isfile(os.path.join(folder, n)) and os.path.getsize(os.path.join(folder, n)) > 16 << 20)]
