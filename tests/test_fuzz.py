"""The fuzzer (tests/fuzz/, tools/fuzz.py) in the suite: a seeded slice of cases, each in its own
process under a timeout and a memory cap, must end with zero failures in every class; a
property-based layer (hypothesis) over the format readers in-process; and the crash safety of
the writer: killed at random moments, the destination always holds one complete version.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import killed_writer, runner, seeds
from wgpu_runtime.errors import GraphError, ModelFormatError
from wgpu_runtime.format import decode_weights, load_artifacts, publish

ROOT = Path(__file__).resolve().parents[1]
SLICE_SEED, SLICE_CASES = 2026, 240


def test_fuzz_slice_has_no_failures(tmp_path):
    """240 seeded cases (a few minutes on 2 cores): every class but ok at zero."""
    run = runner.Run(SLICE_SEED, SLICE_CASES, tmp_path, workers=2, adapter="vulkan", timeout=60)
    outcomes = run.run()
    summary = runner.summarize(outcomes, SLICE_SEED, time.time())
    failures = "\n".join(f"case {f['id']} {f['mutation']} ({f['seed_kind']}): {f['class']}: {f['detail'][:300]}"
                         for f in summary["failures"])
    assert summary["counts"]["ok"] == SLICE_CASES, f"{summary['counts']}\n{failures}"
    assert len(summary["by_mutation"]) >= 30, "the slice should reach most mutations"


def test_fuzzer_detects_what_it_claims(tmp_path):
    """The verdicts are real: a case that escapes, one that hangs, one that runs away with memory
    and one that aborts are each classified as such (a harness that reports only "ok" is useless)."""
    run = runner.Run(1, 0, tmp_path, workers=1, timeout=5, mem_bytes=3 << 30)
    secret = run.canary / "secret.txt"
    probes = {
        "escape": f"open({str(secret)!r}).read()",
        "hang": "import time; time.sleep(60)",
        "memory": "b = bytearray(8 << 30)",
        "abort": "import os; os.abort()",
        "traceback": "{}['missing']",
    }
    for i, (want, code) in enumerate(probes.items()):
        case, x, _ = run.draw(i)
        case.action = "probe"
        Path(case.dir, "probe.py").write_text(code)
        report = _run_probe(case)
        assert run.judge(case, x, report).verdict == want, want


def _run_probe(case) -> dict:
    """Run ``probe.py`` as a case's action, through the worker (fork, cap, audit hook, timeout)."""
    from dataclasses import asdict

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.worker"], input=json.dumps(asdict(case)) + "\n",
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    return json.loads(proc.stdout.splitlines()[-1])


# ------------------------------------------------------------------------- property-based layer
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 63) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)


@pytest.fixture(scope="module")
def seed_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    return {"graph": seeds.graph_model(root / "graph"), "layers": seeds.layers_model(root / "layers")}


def _slots(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield value, k
            yield from _slots(v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield value, i
            yield from _slots(v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["graph", "layers"]), picks=st.lists(st.integers(0, 10 ** 6), min_size=1, max_size=3),
       values=st.lists(JSON, min_size=3, max_size=3))
def test_model_json_mutations_load_or_fail_cleanly(seed_models, tmp_path_factory, kind, picks, values):
    """Any value anywhere in model.json: the model loads (format, graph, layers topology) or one
    of our errors says why; never another exception."""
    from wgpu_runtime.graph.graph import Graph
    from wgpu_runtime.layers.topology import parse

    src = seed_models[kind]
    doc = json.loads(src.read_text())
    for pick, value in zip(picks, values):
        slots = list(_slots(doc))
        container, key = slots[pick % len(slots)]
        container[key] = value
    folder = tmp_path_factory.mktemp("case")
    for shard in src.parent.glob("*.bin"):
        (folder / shard.name).write_bytes(shard.read_bytes())
    (folder / "model.json").write_text(json.dumps(doc))
    try:
        art = load_artifacts(folder)
        if art.format == "graph-model":
            Graph(art.nodes)
        else:
            parse(art.model_topology.get("model_config") or {})
    except (ModelFormatError, GraphError):
        pass


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64),
       specs=st.lists(st.fixed_dictionaries({"name": st.text(min_size=1, max_size=3),
                                              "dtype": st.sampled_from(["float32", "int32", "uint8", "bool", "string",
                                                                        "float16", "float33", "complex64"]),
                                              "shape": st.lists(st.integers(-1, 6), max_size=3)},
                                             optional={"quantization": st.fixed_dictionaries(
                                                 {"dtype": st.sampled_from(["uint8", "uint16", "float16", "int8"]),
                                                  "min": st.floats(), "scale": st.floats()})}),
                      max_size=3))
def test_weight_bytes_decode_or_fail_cleanly(data, specs):
    """Any bytes under any manifest: decoded to exactly the declared bytes, or a ModelFormatError."""
    try:
        out = decode_weights(data, specs)
    except ModelFormatError:
        return
    for spec in specs:
        assert out[spec["name"]].shape == tuple(spec["shape"])


@settings(max_examples=100, deadline=None)
@given(x=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=6, max_size=6))
def test_layers_model_propagates_nan_as_tensorflow(layers_cpu_model, x):
    """Any float32 input, NaN and infinities included, to a layers model on the CPU: the
    oracle's answer, NaN exactly where it has NaN (the GPU path is the fuzzer's)."""
    model, oracle = layers_cpu_model
    arr = np.array([x], np.float32)
    with np.errstate(all="ignore"):
        got = np.asarray(model(arr))
    want = oracle("layers", arr)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.fixture(scope="module")
def layers_cpu_model(seed_models):
    from wgpu_runtime.format import load_artifacts as load
    from wgpu_runtime.layers import bind_weights, model_from_topology

    art = load(seed_models["layers"])
    model = model_from_topology(art.model_topology)
    bind_weights(model.net, art.weights, [s["name"] for s in art.weight_specs])
    return model, runner.Oracle(seed_models["graph"].parent, seed_models["layers"].parent)


# ------------------------------------------------------------------------------- crash safety
def test_killed_writer_leaves_one_complete_version(tmp_path):
    """SIGKILL / SIGTERM at 20 random moments of a writer publishing model folders over and over
    (write_artifacts, which the converter writes through): the destination always loads as one
    complete version, never older than the last one published; the next writer cleans up after
    the dead ones."""
    dest = tmp_path / "web_model"
    killed_writer.write_version(dest, 0)
    rng = random.Random(13)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    leftovers = 0                                    # temporary folders the kills left behind
    for k in range(20):
        proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.killed_writer", str(dest)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True)
        first = proc.stdout.readline()               # it is in its loop: a version takes ~0.1-0.2 s
        assert first.strip() == "1", first
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL if k % 2 == 0 else signal.SIGTERM)
        printed = [1] + [int(v) for v in proc.communicate()[0].split()]
        version = killed_writer.check(dest)          # one complete version (raises otherwise)
        assert version in (printed[-1], printed[-1] + 1), (version, printed)
        leftovers += len(list(tmp_path.iterdir())) - 1
    assert leftovers > 0, "no kill landed while a version was being written"
    killed_writer.write_version(dest, 99)            # a later run: cleans up after the killed ones
    assert killed_writer.check(dest) == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web_model"]


def test_recover_restores_an_old_output_where_a_writer_died_between_renames(tmp_path):
    """The two-rename fallback's window: a dead writer's .old folder goes back to the destination."""
    dest = tmp_path / "out"
    killed_writer.write_version(dest, 5)
    dead = _dead_pid()
    os.rename(dest, tmp_path / f".out.old-{dead}-abcd1234")
    (tmp_path / f".out.tmp-{dead}-abcd1234").mkdir()
    restored = publish.recover(dest)
    assert len(restored) == 2 and killed_writer.check(dest) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_killed_conversion_leaves_the_old_or_the_new_output(tmp_path):
    """The real converter (`convert`, TensorFlow loaded) killed the moment its temporary folder
    appears, 3 times (SIGKILL, SIGTERM, SIGKILL): the destination holds one complete model, the
    old or the new; the next conversion cleans up and leaves nothing beside it."""
    pytest.importorskip("tensorflow")
    sources = [seeds.layers_model(tmp_path / f"src{i}") for i in range(2)]
    src1 = json.loads(sources[1].read_text())          # other weights: tell the outputs apart
    for g in src1["weightsManifest"]:
        for p in g["paths"]:
            (sources[1].parent / p).write_bytes(bytes(b ^ 0x40 for b in (sources[1].parent / p).read_bytes()))
    dest = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def convert(src):
        return subprocess.Popen([sys.executable, "-P", "-m", "wgpu_runtime", "convert", "--input_format=tfjs_layers_model",
                                 "--output_format=tfjs_graph_model", "--overwrite", str(src), str(dest)],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    assert convert(sources[0]).wait(timeout=300) == 0
    first = load_artifacts(dest).weights
    rng = random.Random(5)
    seen = []
    for k, sig in enumerate([signal.SIGKILL, signal.SIGTERM, signal.SIGKILL]):
        proc = convert(sources[1 - k % 2])
        deadline = time.monotonic() + 300
        while not any(p.name.startswith(".out.tmp-") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, "the conversion ended before writing"
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        proc.send_signal(sig)
        proc.wait(timeout=60)
        seen.append(load_artifacts(dest).weights)        # complete, or this raises
    assert convert(sources[1]).wait(timeout=300) == 0
    second = load_artifacts(dest).weights
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src0", "src1"]
    for got in seen:                                      # all of one conversion, none of a mix
        assert any(got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
                   for want in (first, second))
    assert not all(np.array_equal(first[k], second[k]) for k in first)
