#!/usr/bin/env python3
"""Converted models in real TensorFlow.js 4.22 in headless Chromium (cpu, webgl and webgpu
backends; WebGL and WebGPU on SwiftShader) against TensorFlow: a table backend x model with the
max abs error, exit status 1 on any mismatch or failure (an unavailable backend included).

    .venv/bin/python tools/browser_check.py [MODEL_DIRS...] [--backends cpu,webgl,webgpu] [--timeout S]

Without MODEL_DIRS: every converter source the tests build (tests/fixtures/convert_sources.py),
converted in this process to a graph model, and the Keras ones to a layers model too (those the
converter refuses as layers models on purpose, e.g. GRU reset_after=True, are named and left out); the
references are TensorFlow's outputs of the source models.
With MODEL_DIRS (folders holding model.json, graph or layers): the inputs and outputs stored
beside the model in ``io.npz`` (keys ``in:<input>`` / ``out:<output>``, ``out_dequant:`` preferred;
docs/conformance.md), else seeded random inputs (batch 2) and TensorFlow's outputs: a graph model
run by TensorFlow with its weights decoded as TF.js decodes them, a layers model converted back
to Keras (.h5) and run by tf_keras. The browser harness: tests/browser_harness.py; tolerances
per backend: browser_harness.TOLERANCE. Needs tools/setup.sh (chromium, npm packages, TensorFlow).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
from browser_harness import BACKENDS, TOLERANCE, BrowserError, BrowserMissing, browser_predict_many  # noqa: E402


@dataclass
class Case:
    name: str
    model_dir: Path
    kind: str                    # "graph" | "layers"
    feeds: dict                  # input name -> array
    refs: list                   # TensorFlow's outputs, in the model's output order


# ---------------------------------------------------------------------------------------------
# the cases

def default_cases(work: Path) -> list[Case]:
    """Every converter source of the tests, as a graph model; the Keras ones as a layers model too."""
    from fixtures.convert_sources import build_sources, load_model_json

    from wgpu_runtime.convert.errors import ConversionError
    from wgpu_runtime.convert.graph import convert_graph
    from wgpu_runtime.convert.layers import convert_layers
    from wgpu_runtime.convert.options import ConvertOptions

    cases = []
    for name, s in build_sources(work / "src").items():
        folder = convert_graph(s.path, work / "graph" / name, s.input_format, ConvertOptions(**s.options)).parent
        keys = list(load_model_json(folder)["signature"]["outputs"])
        cases.append(Case(f"{name} (graph)", folder, "graph", s.feeds, [s.ref[k] for k in keys]))
        if s.input_format in ("keras", "keras_keras"):
            try:
                folder = convert_layers(s.path, work / "layers" / name, s.input_format, "tfjs_layers_model",
                                        ConvertOptions()).parent
            except ConversionError as e:     # refused on purpose (e.g. GRU reset_after=True): not a layers case
                print(f"{name} (layers): not converted: {e}", file=sys.stderr)
                continue
            outs = [o[0] for o in load_model_json(folder)["modelTopology"]["model_config"]["config"]["output_layers"]]
            cases.append(Case(f"{name} (layers)", folder, "layers", s.feeds, [s.ref[k] for k in outs]))
    return cases


def folder_case(given: Path, work: Path) -> Case:
    """A model folder as the user names it (the table shows the path as given)."""
    folder = given.parent if given.is_file() else given
    mj = json.loads((folder / "model.json").read_text())
    kind = "layers" if mj.get("format") == "layers-model" or "model_config" in mj.get("modelTopology", {}) else "graph"
    stored = _stored_io(folder)
    if kind == "graph":
        from fixtures.convert_sources import tf_run_graph_model

        from wgpu_runtime.format import load_artifacts
        from wgpu_runtime.inputs import random_inputs

        sig = load_artifacts(folder).signature
        keys = list(sig.outputs)
        aliases = {k: {k, spec.name, spec.name.split(":")[0]} for k, spec in {**sig.inputs, **sig.outputs}.items()}
        if stored:
            ins, outs = stored
            feeds = {k: _pick(ins, aliases[k], folder) for k in sig.inputs}
            return Case(str(given), folder, "graph", feeds, [_pick(outs, aliases[k], folder) for k in keys])
        feeds = random_inputs(list(sig.inputs.values()), batch=2, seed=0)
        feeds = {k: feeds[spec.name] for k, spec in sig.inputs.items()}
        ref = tf_run_graph_model(folder, feeds)
        return Case(str(given), folder, "graph", feeds, [ref[k] for k in keys])
    config = mj["modelTopology"]["model_config"]["config"]
    in_names = [i[0] for i in config.get("input_layers", [])]
    out_names = [o[0] for o in config.get("output_layers", [])]
    if stored and in_names and out_names:
        ins, outs = stored
        return Case(str(given), folder, "layers", {n: _pick(ins, {n}, folder) for n in in_names},
                    [_pick(outs, {n}, folder) for n in out_names])
    return _keras_case(str(given), folder, work)


def _keras_case(name: str, folder: Path, work: Path) -> Case:
    """A layers model converted back to Keras and run by tf_keras on seeded inputs."""
    import tf_keras

    from wgpu_runtime.convert.layers import convert_layers
    from wgpu_runtime.format import TensorSpec
    from wgpu_runtime.inputs import random_inputs

    h5 = convert_layers(folder / "model.json", Path(tempfile.mkdtemp(dir=work)) / "model.h5", "tfjs_layers_model",
                        "keras", {})
    model = tf_keras.models.load_model(str(h5), compile=False)
    specs = [TensorSpec(name=t.name.split(":")[0], dtype=t.dtype.name, shape=[-1 if d is None else d for d in t.shape])
             for t in model.inputs]
    names = [n.split(":")[0] for n in model.input_names]
    arrays = random_inputs(specs, batch=2, seed=0)
    feeds = dict(zip(names, (arrays[s.name] for s in specs)))
    out = model.predict([feeds[n] for n in names] if len(names) > 1 else feeds[names[0]], verbose=0)
    return Case(name, folder, "layers", feeds, [np.asarray(o) for o in (out if isinstance(out, list) else [out])])


def _stored_io(folder: Path):
    """({input name: array}, {output name: array}) of io.npz's first set, or None."""
    io = folder / "io.npz"
    if not io.is_file():
        return None
    with np.load(io, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    ins = {k[3:]: v for k, v in arrays.items() if k.startswith("in:")}
    outs = {k[4:]: v for k, v in arrays.items() if k.startswith("out:")}
    outs.update({k[12:]: v for k, v in arrays.items() if k.startswith("out_dequant:")})
    return (ins, outs) if ins and outs else None


def _pick(arrays: dict, names: set, folder: Path) -> np.ndarray:
    for n in names:
        if n in arrays:
            return arrays[n]
    raise SystemExit(f"error: {folder / 'io.npz'} has none of {sorted(names)} (keys: {sorted(arrays)})")


# ---------------------------------------------------------------------------------------------
# the check

def compare(backend: str, got, refs: list) -> tuple[str, str | None]:
    """(the table cell, None when it passes else what is wrong)."""
    if isinstance(got, BrowserError):
        return "FAIL", str(got)
    if len(got) != len(refs):
        return "FAIL", f"{len(got)} outputs, TensorFlow has {len(refs)}"
    worst, bad = 0.0, None
    for k, (g, r) in enumerate(zip(got, refs)):
        r = np.asarray(r)
        if g.shape != r.shape:
            return "FAIL", f"output {k}: shape {list(g.shape)}, TensorFlow's {list(r.shape)}"
        g64, r64 = g.astype(np.float64), r.astype(np.float64)
        err = float(np.max(np.abs(g64 - r64), initial=0.0))
        worst = max(worst, err)
        if not np.allclose(g64, r64, **TOLERANCE[backend]) and bad is None:
            bad = f"output {k}: max abs error {err:.3g} beyond atol {TOLERANCE[backend]['atol']:g} + rtol {TOLERANCE[backend]['rtol']:g}"
    return (f"{worst:.2e}" if bad is None else f"FAIL {worst:.2e}"), bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path, metavar="MODEL_DIRS", help="folders with model.json (default: "
                    "every converter source of the tests, converted here)")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds for the browser run (default: %(default)s)")
    args = ap.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        ap.error(f"--backends: unknown {unknown} (known: {', '.join(BACKENDS)})")
    missing = [m for m in args.models if not (m / "model.json").is_file() and not (m.is_file() and m.suffix == ".json")]
    if missing:
        ap.error(f"no model.json in {', '.join(map(str, missing))}")
    try:
        with tempfile.TemporaryDirectory(prefix="browser-check-") as tmp:
            work = Path(tmp)
            cases = [folder_case(m, work) for m in args.models] if args.models else default_cases(work)
            run = browser_predict_many([{"model_dir": c.model_dir, "inputs": c.feeds, "kind": c.kind} for c in cases],
                                       backends, timeout_s=args.timeout)
    except BrowserMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for b in backends:
        print(f"{b}: {run.backends[b]}")
    print()
    cells = [[compare(b, run.results[i][b], c.refs) for b in backends] for i, c in enumerate(cases)]
    width = max(len("model"), *(len(c.name) for c in cases))
    cols = [max(len(b), 14) for b in backends]
    print("  ".join(["model".ljust(width)] + [b.ljust(w) for b, w in zip(backends, cols)]).rstrip())
    failures = []
    for case, row in zip(cases, cells):
        print("  ".join([case.name.ljust(width)] + [cell.ljust(w) for (cell, _), w in zip(row, cols)]).rstrip())
        failures += [f"{case.name} on {b}: {bad}" for b, (_, bad) in zip(backends, row) if bad]
    tol = ", ".join(f"{b} atol {TOLERANCE[b]['atol']:g} rtol {TOLERANCE[b]['rtol']:g}" for b in backends)
    print(f"\nmax abs error against TensorFlow; tolerance: {tol}")
    if failures:
        print(f"\n{len(failures)} mismatch(es) or failure(s):", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    print(f"all {len(cases)} models match TensorFlow on {', '.join(backends)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
