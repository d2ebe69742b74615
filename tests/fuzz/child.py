"""What runs inside one case's process: the memory cap, the escape detector (an audit hook that
records every file or folder opened inside the canary folder), the action, and a result.json.

Actions: "load" (load_model + predict, outputs saved), "cli" (wgpu_runtime.__main__.main(argv)),
"threads" (threads sharing one model; with "batching", its dynamic batching on), "loop" (many
predicts on one model).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import threading
import traceback
from pathlib import Path

import numpy as np

_EVENTS = {"open", "os.listdir", "os.scandir", "shutil.copyfile", "os.readlink"}


def _install_escape_detector(canary: str, found: list) -> None:
    """Record any open/listing of a path that resolves inside ``canary`` (symlinks followed)."""
    canary = os.path.realpath(canary)
    busy = threading.local()

    def hook(event, args):
        if event not in _EVENTS or getattr(busy, "on", False) or not args:
            return
        path = args[0]
        if not isinstance(path, (str, bytes, os.PathLike)):
            return
        busy.on = True
        try:
            real = os.path.realpath(os.fsdecode(path))
            if real == canary or real.startswith(canary + os.sep):
                found.append(f"{event} {os.fsdecode(path)} -> {real}")
        except (ValueError, OSError):
            pass
        finally:
            busy.on = False
    sys.addaudithook(hook)


def run_case(case: dict) -> None:
    """Run one case (in a fresh forked process); writes ``result.json`` into the case folder."""
    folder = Path(case["dir"])
    out = open(folder / "stdout.txt", "wb", buffering=0)
    err = open(folder / "stderr.txt", "wb", buffering=0)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    sys.stdout = open(1, "w", closefd=False, buffering=1)
    sys.stderr = open(2, "w", closefd=False, buffering=1)
    cap = int(case["mem_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    escapes: list[str] = []
    _install_escape_detector(case["canary"], escapes)
    result: dict = {"status": "ok"}
    try:
        result.update(_ACTIONS[case["action"]](case, folder) or {})
    except MemoryError as e:
        result = {"status": "memory", "type": "MemoryError", "message": str(e)[:500]}
    except BaseException as e:  # noqa: BLE001 -- classified by the parent
        from wgpu_runtime.errors import WgpuRuntimeError

        ours = isinstance(e, WgpuRuntimeError)
        result = {"status": "error" if ours else "exception", "type": type(e).__name__,
                  "message": str(e)[:2000]}
        if not ours:
            result["traceback"] = traceback.format_exc()[-4000:]
    result["escapes"] = escapes[:20]
    (folder / "result.json").write_text(json.dumps(result))


def _feeds(case: dict, folder: Path):
    data = np.load(folder / "inputs.npz", allow_pickle=True)
    return {k: data[k] for k in data.files}


def _save(folder: Path, outs) -> dict:
    outs = outs if isinstance(outs, list) else [outs]
    np.savez(folder / "outputs.npz", *[np.asarray(o) for o in outs])
    return {"outputs": len(outs)}


def _predict(model, case: dict, folder: Path, feeds: dict | None = None):
    feeds = _feeds(case, folder) if feeds is None else feeds
    kwargs = case.get("predict_kwargs") or {}
    if hasattr(model, "execute"):
        return model.predict(feeds if len(feeds) != 1 or case.get("feed_by_name") else next(iter(feeds.values())))
    x = next(iter(feeds.values())) if len(feeds) == 1 else list(feeds.values())
    return model.predict(x, verbose=0, **kwargs)


def _load(case: dict, folder: Path) -> dict:
    import wgpu_runtime as wr

    model = wr.load_model(case["model"], case.get("adapter"))
    return _save(folder, _predict(model, case, folder))


def _threads(case: dict, folder: Path) -> dict:
    import wgpu_runtime as wr

    model = wr.load_model(case["model"], case.get("adapter"))
    batching = bool(case.get("batching")) and hasattr(model, "enable_dynamic_batching")
    if batching:     # a graph that mixes rows is refused with GraphError: a clean error, not a pass
        model.enable_dynamic_batching(max_batch_size=4, max_delay_ms=5)
    base = _feeds(case, folder)
    n = int(case.get("threads", 2))
    # batching: thread t > 0 feeds its own input (the case's, channels rolled by t), so that rows
    # handed to the wrong caller cannot go unnoticed; thread 0's is the case's, for the oracle
    inputs = [base if not batching or t == 0 else {k: np.roll(v, t, axis=-1) for k, v in base.items()}
              for t in range(n)]
    results, errors = [[] for _ in range(n)], []

    def work(t):
        try:
            for _ in range(int(case.get("repeats", 8))):
                results[t].append(np.asarray(_predict(model, case, folder, inputs[t])))
        except BaseException as e:  # noqa: BLE001 -- re-raised in the main thread
            errors.append(e)
    threads = [threading.Thread(target=work, args=(t,)) for t in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    if not batching:
        flat = [r for rs in results for r in rs]
        if any(not np.array_equal(r, flat[0], equal_nan=True) for r in flat):
            return {"status": "wrong", "message": "threads sharing one model got different results"}
        return _save(folder, flat[0])
    # batched calls run the plan of another batch size, whose kernels may sum in another order:
    # each result against the numpy reference of its own input, with the runner's tolerance
    # (float32 sums of conv, mean and matmul in another order: rtol 1e-4, atol 1e-6)
    from wgpu_runtime.conformance.reference import evaluate
    from wgpu_runtime.graph.graph import Graph

    graph, weights = Graph(model.artifacts.nodes), model.artifacts.weights
    for t, rs in enumerate(results):
        with np.errstate(all="ignore"):
            want = evaluate(graph, weights, inputs[t], [("Identity", 0)])[("Identity", 0)]
        if any(not np.allclose(r, want, rtol=1e-4, atol=1e-6, equal_nan=True) for r in rs):
            return {"status": "wrong", "message": f"thread {t}: a batched call's result is not its own input's"}
    if not model.dynamic_batching["batched_calls"]:
        return {"status": "wrong", "message": "dynamic batching batched none of the calls"}
    return _save(folder, results[0][0])


def _loop(case: dict, folder: Path) -> dict:
    import wgpu_runtime as wr

    model = wr.load_model(case["model"], case.get("adapter"))
    y = _predict(model, case, folder)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(int(case.get("repeats", 40))):
        y = _predict(model, case, folder)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    if grown > int(case.get("leak_bytes", 64 << 20)):
        return {"status": "memory", "message": f"resident memory grew {grown} bytes over the loop"}
    return _save(folder, y)


def _cli(case: dict, folder: Path) -> dict:
    from wgpu_runtime.__main__ import main

    try:
        rc = main(case["argv"])
    except SystemExit as e:          # argparse's usage errors
        rc = e.code if isinstance(e.code, int) else 2
    sys.stdout.flush()
    sys.stderr.flush()
    return {"rc": rc}


def _probe(case: dict, folder: Path) -> dict:
    """Run the case folder's probe.py (tests/test_fuzz.py checks the verdicts with it)."""
    exec(compile((folder / "probe.py").read_text(), str(folder / "probe.py"), "exec"), {})
    return {}


_ACTIONS = {"load": _load, "threads": _threads, "loop": _loop, "cli": _cli, "probe": _probe}
