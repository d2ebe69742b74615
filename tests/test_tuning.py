"""The autotuner's persistent cache and choice points: winners survive a new process, a broken
cache file never breaks a run, and a tuned model computes what the untuned one does."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import wgpu_runtime
from wgpu_runtime import tuning
from wgpu_runtime.graph import autotune, in_context
from wgpu_runtime.models import default_model_path
from wgpu_runtime.tuning import Variant, cache

MODEL = default_model_path()
CANDIDATES = [Variant("plain"), Variant("tiled_8"), Variant("tiled_16")]
OPS = Path(wgpu_runtime.__file__).parent / "ops"


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh cache folder (never the user's) and no caches loaded from elsewhere."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV_DIR, str(folder))
    monkeypatch.delenv(tuning.ENV_TUNE, raising=False)
    cache.forget()
    yield folder
    cache.forget()


def _vulkan():
    from wgpu_runtime import get_device

    return get_device("vulkan")


def test_cache_folder_env_and_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_DIR, str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(cache.ENV_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "wgpu-runtime"


def test_round_trip_and_choose_uses_the_winner(tmp_cache):
    dev = _vulkan()
    c = cache.for_device(dev)
    assert c.path.parent == tmp_cache and c.key["backend"] == "Vulkan" and c.key["wgpu"]
    assert tuning.choose(dev, "synthetic", (3, 4), CANDIDATES).name == "plain"      # nothing tuned
    c.store("synthetic", (3, 4), "tiled_16", {"plain": 2.0, "tiled_8": 1.5, "tiled_16": 1.0})
    assert c.save() and c.path.is_file()
    cache.forget()                                          # as a new process would: read the file
    again = cache.for_device(dev)
    assert again is not c and again.lookup("synthetic", (3, 4)) == "tiled_16"
    assert again.entries[("synthetic", (3, 4))]["timings_ms"]["plain"] == 2.0
    with tuning.recording() as points:
        assert tuning.choose(dev, "synthetic", (3, 4), CANDIDATES).name == "tiled_16"
        assert tuning.choose(dev, "synthetic", (3, 5), CANDIDATES).name == "plain"   # another class
        # a winner that is no longer a candidate is not used
        assert tuning.choose(dev, "synthetic", (3, 4), CANDIDATES[:2]).name == "plain"
    assert [(p.shape_class, p.chosen, p.source) for p in points] == [
        ((3, 4), "tiled_16", "cache"), ((3, 5), "plain", "default"), ((3, 4), "plain", "default")]
    assert points[0].candidates == ("plain", "tiled_8", "tiled_16") and points[0].family == "synthetic"


def test_disabled_tuning_gives_the_first_candidate(tmp_cache, monkeypatch):
    dev = _vulkan()
    c = cache.for_device(dev)
    c.store("synthetic", (1,), "tiled_8")
    assert tuning.choose(dev, "synthetic", (1,), CANDIDATES).name == "tiled_8"
    with tuning.disabled(), tuning.recording() as points:
        assert tuning.choose(dev, "synthetic", (1,), CANDIDATES).name == "plain"
    assert points[0].source == "disabled"
    tuning.set_enabled(False)
    try:
        assert tuning.choose(dev, "synthetic", (1,), CANDIDATES).name == "plain"
    finally:
        tuning.set_enabled(True)
    monkeypatch.setenv(tuning.ENV_TUNE, "0")
    assert tuning.choose(dev, "synthetic", (1,), CANDIDATES).name == "plain"
    monkeypatch.delenv(tuning.ENV_TUNE)
    assert tuning.choose(dev, "synthetic", (1,), CANDIDATES).name == "tiled_8"
    with tuning.forcing({"synthetic": "tiled_16"}):           # forcing wins over the cache
        assert tuning.choose(dev, "synthetic", (1,), CANDIDATES).name == "tiled_16"
    with pytest.raises(ValueError, match="no candidate"):
        tuning.choose(dev, "synthetic", (1,), [])


def _other_key_file(c) -> str:
    return json.dumps({"record": cache.RECORD, "schema": cache.SCHEMA, "key": {**c.key, "driver": "another driver"},
                       "entries": [{"family": "synthetic", "shape_class": [1], "variant": "tiled_8"}]})


@pytest.mark.parametrize("bad", ["garbage", "wrong schema", "no entries", "stale", "directory"])
def test_broken_cache_file_is_ignored_with_a_warning_then_rewritten(tmp_cache, caplog, bad):
    dev = _vulkan()
    path = cache.for_device(dev).path
    cache.forget()
    path.parent.mkdir(parents=True, exist_ok=True)
    if bad == "directory":
        path.mkdir()
    else:
        path.write_text({"garbage": "\x00{not json", "wrong schema": json.dumps({"record": cache.RECORD, "schema": 99}),
                         "no entries": json.dumps({"record": cache.RECORD, "schema": cache.SCHEMA, "key": cache.device_key(dev)}),
                         "stale": _other_key_file(cache.TuningCache(cache.device_key(dev), path.parent))}[bad])
    with caplog.at_level(logging.WARNING, logger="wgpu_runtime.tuning.cache"):
        c = cache.for_device(dev)
        assert tuning.choose(dev, "synthetic", (1,), CANDIDATES).name == "plain"     # defaults
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ignored" in warnings[0].getMessage()
    c.store("synthetic", (1,), "tiled_8")
    assert c.save() and path.is_file()                                               # rewritten
    cache.forget()
    assert cache.for_device(dev).lookup("synthetic", (1,)) == "tiled_8"


def test_unwritable_folder_warns_once_and_keeps_results_in_memory(tmp_path, monkeypatch, caplog):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv(cache.ENV_DIR, str(tmp_path / "a_file" / "cache"))   # a folder that cannot exist
    cache.forget()
    try:
        dev = _vulkan()
        c = cache.for_device(dev)
        c.store("synthetic", (1,), "tiled_16")
        with caplog.at_level(logging.WARNING, logger="wgpu_runtime.tuning.cache"):
            assert c.save() is False and c.save() is False
        assert len([r for r in caplog.records if "not saved" in r.getMessage()]) == 1
        assert tuning.choose(dev, "synthetic", (1,), CANDIDATES).name == "tiled_16"
    finally:
        cache.forget()


def test_file_is_replaced_atomically_and_leaves_no_temp_files(tmp_cache):
    c = cache.TuningCache({"device": "test"}, tmp_cache)
    for i in range(3):
        c.store("synthetic", (i,), "plain", {"plain": 1.0})
        assert c.save()
    assert sorted(p.name for p in tmp_cache.iterdir()) == [c.path.name]
    data = json.loads(c.path.read_text())
    assert data["key"] == {"device": "test"} and len(data["entries"]) == 3


# ---------------------------------------------------------------------------- end to end
def cli(*args, env=None, check=True):
    out = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", *map(str, args)], capture_output=True,
                         text=True, timeout=900, env=env)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def _ops_call_choose() -> bool:
    return any("tuning.choose(" in p.read_text() for p in OPS.glob("*.py"))


def test_tune_cli_then_run_and_bench_use_the_winners(tmp_path):
    import os

    env = {**os.environ, cache.ENV_DIR: str(tmp_path / "cache")}
    env.pop(tuning.ENV_TUNE, None)
    report = json.loads(cli("tune", MODEL, "--adapter", "vulkan", "--runs", "1", "--json", env=env).stdout)
    files = list((tmp_path / "cache").glob("tuning-*.json"))
    if _ops_call_choose():          # the matmul / conv lowerings have variants: there is something to tune
        assert report["points"], "the embedded model's plan raised no choice point"
        assert len(files) == 1 and report["cache_path"] == str(files[0])
    if not report["points"]:
        return
    for p in report["points"]:
        timed = [c for c in p["candidates"] if c["ms"] is not None]
        if len(p["candidates"]) > 1:
            best = min(timed, key=lambda c: c["ms"])
            default = next((c for c in timed if c["name"] == p["default"]), None)
            assert p["winner"] in (best["name"], p["default"]) and p["fastest_alone"] == best["name"]
            faster_alone = default is not None and best["ms"] < default["ms"] * (1 - autotune.MARGIN)
            ctx = p["in_context_ms"]
            # the whole-model check runs exactly where the fastest alone beat the default by MARGIN
            assert (ctx is not None or p["in_context_error"] is not None) == (faster_alone and best["name"] != p["default"])
            if ctx is not None:         # the rule of InContext.faster, on the reported times
                rounds = p["in_context_rounds_ms"]
                in_model = (ctx[best["name"]] < ctx[p["default"]] * (1 - autotune.MARGIN)
                            and all(a < b for a, b in zip(rounds[best["name"]], rounds[p["default"]])))
                assert len(rounds[best["name"]]) == len(rounds[p["default"]]) == in_context.ROUNDS
                assert p["winner"] == (best["name"] if in_model else p["default"])
            elif p["winner"] != p["default"]:       # only where the default itself failed to run
                assert default is None, f"{p['winner']} won without the check in the model: {p}"
    # Make a non-default variant the winner of one class (one that ran and agreed with the default),
    # so that using the cache visibly changes the plan.
    data = json.loads(files[0].read_text())
    entry = next(e for e in data["entries"] if len(e["timings_ms"]) > 1)
    default = next(p["default"] for p in report["points"] if p["family"] == entry["family"]
                   and p["shape_class"] == entry["shape_class"])
    entry["variant"] = next(n for n in entry["timings_ms"] if n != default)
    files[0].write_text(json.dumps(data))

    bench = json.loads(cli("bench", MODEL, "--json", "--runs", "1", "--warmup", "0", "--adapter", "vulkan",
                           env=env).stdout)
    winners = {(e["family"], tuple(e["shape_class"])): e["variant"] for e in data["entries"]}
    used = {(v["family"], tuple(v["shape_class"])): v for v in bench["variants"]}
    assert used, "bench reports no variants"
    for key, v in used.items():
        if key in winners and winners[key] in v["candidates"]:
            assert (v["chosen"], v["source"]) == (winners[key], "cache"), key
    assert used[(entry["family"], tuple(entry["shape_class"]))]["chosen"] == entry["variant"]
    untuned = json.loads(cli("bench", MODEL, "--json", "--runs", "1", "--warmup", "0", "--adapter", "vulkan",
                             "--no-tune", env=env).stdout)
    assert all(v["source"] == "disabled" and v["chosen"] == v["candidates"][0] for v in untuned["variants"])

    ref = np.load(MODEL / "reference.npz")
    np.save(tmp_path / "x.npy", ref["x"])
    for flag in ([], ["--no-tune"]):
        cli("run", MODEL, "--input", f"input={tmp_path / 'x.npy'}", "--output", tmp_path / f"out{len(flag)}.npz",
            "--adapter", "vulkan", *flag, env=env)
    tuned, plain = (np.load(tmp_path / f"out{i}.npz")["Identity:0"] for i in (0, 1))
    # Variants differ in float32 summation order only (the tolerance test_cli uses against TF).
    np.testing.assert_allclose(tuned, plain, atol=1e-4 * np.abs(plain).max())
    np.testing.assert_allclose(tuned, ref["y"], atol=1e-4 * np.abs(ref["y"]).max())


def test_in_context_times_each_variant_in_the_whole_model_and_frees_its_weights(tmp_cache):
    """graph/in_context.py: the whole plan once per candidate of one shape class, timed on the
    steps it does not share; the repacked weights of the candidates are gone afterwards and the
    model still computes its reference output."""

    model = wgpu_runtime.load_model(MODEL, adapter="vulkan")
    ref = np.load(MODEL / "reference.npz")
    feeds = {model.inputs[0].name: ref["x"]}
    sites = autotune.choice_points(model, feeds)
    point = next(p for p, _, _ in sites if p.family == "conv2d" and {"texture", "regblock"} <= set(p.candidates))
    weights = (set(model._buffers), set(model._textures))
    names = ["texture", "regblock"]
    with in_context.scratch_weights(model):
        plans = {n: in_context.whole_plan(model, feeds, {(point.family, point.shape_class): n})[0] for n in names}
        assert (set(model._buffers), set(model._textures)) != weights      # the regblock kernel's weights
        mine, theirs = (in_context.own_steps(plans[a], plans[b]) for a, b in (names, names[::-1]))
        assert mine and theirs                  # the two variants' dispatches differ ...
        kernels = {n: {plans[n].steps[i].kernel for i in ids} for n, ids in zip(names, (mine, theirs))}
        assert any("texture" in k for k in kernels["texture"]) and not any("texture" in k for k in kernels["regblock"])
        assert len(plans["texture"].steps) - len(mine) == len(plans["regblock"].steps) - len(theirs)  # ... the rest is shared
        del plans
    assert (set(model._buffers), set(model._textures)) == weights
    timed = in_context.time_in_context(model, feeds, point.family, point.shape_class, names, runs=1, rounds=2)
    assert timed.timer == ("gpu" if model.device.has_timestamps else "wall")
    assert set(timed.ms) == set(names) and all(t > 0 for t in timed.ms.values())
    for n in names:             # per-step minima over all runs: at most each round's sum
        assert len(timed.rounds[n]) == 2
        assert timed.timer != "gpu" or timed.ms[n] <= min(timed.rounds[n]) + 1e-9
    assert (set(model._buffers), set(model._textures)) == weights
    # Variants differ in float32 summation order only (the tolerance test_cli uses against TF).
    y = model.predict(ref["x"])
    np.testing.assert_allclose(y, ref["y"], atol=1e-4 * np.abs(ref["y"]).max())


def test_a_variant_is_faster_in_the_model_only_by_the_margin_and_in_every_round():
    def timed(ms_a, rounds_a, ms_b=1.0, rounds_b=(1.0, 1.0, 1.0)):
        return in_context.InContext({"a": ms_a, "b": ms_b}, {"a": list(rounds_a), "b": list(rounds_b)}, "gpu")

    m = autotune.MARGIN
    assert timed(0.80, (0.85, 0.90, 0.95)).faster("a", "b", m)
    assert not timed(0.80, (0.85, 1.05, 0.95)).faster("a", "b", m)      # one round went the other way
    assert not timed(1 - m / 2, (0.90, 0.90, 0.90)).faster("a", "b", m)  # within the margin overall
    assert not timed(0.80, (0.85, 0.90, 0.95)).faster("b", "a", m)


def test_tune_reports_progress_per_shape_class(tmp_cache):
    model = wgpu_runtime.load_model(MODEL, adapter="vulkan")
    feeds = {model.inputs[0].name: np.load(MODEL / "reference.npz")["x"]}
    calls = []
    report = autotune.tune(model, feeds, runs=1, warmup=0, progress=lambda *a: calls.append(a))
    total = len(report.points)
    assert total and calls[-1] == (total, total, "")
    assert [c[0] for c in calls] == list(range(total + 1)) and all(c[1] == total for c in calls)
    assert [c[2] for c in calls[:-1]] == [f"{p.family} {p.shape_class}" for p in report.points]


def test_tune_clear_and_a_corrupt_cache_never_crash_the_cli(tmp_path):
    import os

    env = {**os.environ, cache.ENV_DIR: str(tmp_path / "cache")}
    report = json.loads(cli("tune", MODEL, "--adapter", "vulkan", "--runs", "1", "--json", env=env).stdout)
    if not report["points"]:
        assert not _ops_call_choose()
        return                               # no choice points: no cache file is read
    path = Path(report["cache_path"])
    path.write_text("{ broken")
    out = cli("bench", MODEL, "--json", "--runs", "1", "--warmup", "0", "--adapter", "vulkan", env=env)
    assert "ignored" in out.stderr and "Traceback" not in out.stderr
    assert all(v["source"] == "default" for v in json.loads(out.stdout)["variants"])
    again = json.loads(cli("tune", MODEL, "--adapter", "vulkan", "--runs", "1", "--clear", "--json", env=env).stdout)
    assert not any(p["cached"] for p in again["points"])
    assert json.loads(path.read_text())["record"] == cache.RECORD


def test_the_cache_key_changes_with_the_kernels_and_the_loop_bounding(monkeypatch):
    """Timings of other kernel code, or of kernels compiled another way, are not reused."""
    from wgpu_runtime import pipelines, shader_modules
    dev = _vulkan()
    monkeypatch.delenv(shader_modules.LOOP_BOUNDING_ENV, raising=False)
    key = cache.device_key(dev)
    assert key["kernels"] == pipelines.kernels_digest() and key["loop_bounding"] is False
    monkeypatch.setenv(shader_modules.LOOP_BOUNDING_ENV, "1")
    assert cache.key_digest(cache.device_key(dev)) != cache.key_digest(key)
    monkeypatch.delenv(shader_modules.LOOP_BOUNDING_ENV)
    pipelines.kernels_digest.cache_clear()
    real = pipelines.resources.files
    monkeypatch.setattr(pipelines.resources, "files", lambda pkg: _Extra(real(pkg)))
    try:
        assert cache.key_digest(cache.device_key(dev)) != cache.key_digest(key)
    finally:
        monkeypatch.undo()
        pipelines.kernels_digest.cache_clear()


class _Extra:
    """The kernels folder with one more kernel file in it."""

    def __init__(self, folder):
        self.folder = folder

    def iterdir(self):
        yield from self.folder.iterdir()
        yield _File("zz_extra.wgsl", b"fn f() {}")


class _File:
    def __init__(self, name, data):
        self.name, self.data = name, data

    def read_bytes(self):
        return self.data


def test_tune_table_through_a_pipe_shows_whole_rows_and_names(tmp_path):
    """Printed to a pipe (not a terminal), the table is not cropped at 80 columns: every row
    has its right border and every candidate name is whole (a tile and its split-K form differ
    only at the end); nodes are shown by their own names (the last two parts of the path)."""
    import os

    env = {**os.environ, cache.ENV_DIR: str(tmp_path / "cache")}
    env.pop(tuning.ENV_TUNE, None)
    report = json.loads(cli("tune", MODEL, "--adapter", "vulkan", "--runs", "1", "--json", env=env).stdout)
    if not report["points"]:
        pytest.skip("the embedded model's plan raised no choice point: no table to print")
    text = cli("tune", MODEL, "--adapter", "vulkan", "--runs", "1", env=env).stdout
    rows = [line for line in text.splitlines() if line[:1] in "┏┃┡│├└"]
    assert rows and all(line.rstrip()[-1] in "┓┃┩│┤┘" for line in rows), text
    for p in report["points"]:
        assert "/".join(p["node"].split("/")[-2:]) in text
        for c in p["candidates"]:
            assert f" {c['name']} " in text, c["name"]
