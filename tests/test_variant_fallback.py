"""A kernel variant whose kernel does not compile on an adapter (a WGSL that naga or a driver
rejects) is passed over there: the model is planned again with the next candidate, a warning
names the variant, and the device remembers it (graph/plan.py build_plan, tuning.pass_over).
A kernel no variant choice avoids still fails, naming its node. The failures here are real
ones: the kernel's WGSL is made invalid as it is rendered, so naga rejects it on the device."""
import logging

import numpy as np
import pytest

import wgpu_runtime as wr
from wgpu_runtime import get_device, pipelines, tuning
from wgpu_runtime.conformance.models import ModelUnderTest
from wgpu_runtime.models import default_model_path
from wgpu_runtime.tuning import ChoicePoint, Variant

from conftest import ADAPTERS
from fixtures.tiny_models import loop_model

# the texture convolutions: every software adapter's default for the embedded model's
# convolutions and its classifier (with subgroups on lavapipe, without on llvmpipe GL)
TEXTURE_KERNELS = ("conv2d_texture_subgroup.wgsl", "conv2d_texture.wgsl")


@pytest.fixture
def broken(monkeypatch):
    """The kernel files in the set it gives get a syntax error as they are rendered (in this test)."""
    render = pipelines.render
    names: set[str] = set()

    def rendered(name, template=None):
        code = render(name, template)
        return code + "\nfn broken( {\n" if name in names else code

    monkeypatch.setattr(pipelines, "render", rendered)
    return names


def fresh_device(adapter: str) -> wr.Device:
    """A device of its own on the adapter (no pipelines compiled yet, no variants passed over),
    with the features and limits of the process's one."""
    shared = get_device(adapter)
    return wr.Device.wrap(shared.adapter.request_device_sync(required_features=sorted(shared.features),
                                                             required_limits=dict(shared.device.limits)))


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_variant_that_does_not_compile_is_passed_over_and_the_model_still_passes_conformance(adapter, broken,
                                                                                                caplog):
    device = fresh_device(adapter)
    broken.update(TEXTURE_KERNELS)
    with caplog.at_level(logging.WARNING, logger="wgpu_runtime.graph.plan"):
        result = ModelUnderTest(default_model_path()).check(device)     # numpy reference + TF's outputs
    assert result.passed and result.checks, result.to_dict()
    refused = {(family, name) for family, _, name in device.refused_variants}
    assert ("conv2d", "texture") in refused and ("matmul", "texture") in refused, refused
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("'texture' does not compile on" in w and "passed over" in w for w in warnings), warnings
    assert len(warnings) <= 2      # one plan again per round of failures, not one per shape class

    # a new model on the device does not try the kernel again: no warning, no texture kernel
    caplog.clear()
    model = wr.load_graph_model(default_model_path(), device=device)
    x = np.random.default_rng(0).random((1, 128, 128, 3), dtype=np.float32)
    model.predict(x)
    plan = next(iter(model._plans.values()))
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert not {st.kernel for st in plan.steps} & set(TEXTURE_KERNELS)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_kernel_no_variant_choice_avoids_fails_naming_its_node_and_the_model_recovers(adapter, broken):
    device = fresh_device(adapter)
    model = wr.load_graph_model(default_model_path(), device=device)
    x = np.random.default_rng(1).random((1, 128, 128, 3), dtype=np.float32)
    broken.add("softmax.wgsl")
    with pytest.raises(wr.KernelCompileError, match=r"node '.*predictions/Softmax' \(Softmax\): kernel softmax.wgsl") as e:
        model.predict(x)
    assert e.value.kernel == "softmax.wgsl" and not device.refused_variants
    broken.clear()      # the kernel compiles again: the model plans and runs (nothing was cached broken)
    want = ModelUnderTest(default_model_path()).check(device)
    assert want.passed, want.to_dict()
    assert model.predict(x).shape == (1, 1000)


def _point(chosen, candidates=("a", "b", "c"), source="default", shape_class=(1,)):
    return ChoicePoint("conv2d", shape_class, candidates, chosen, source)


def test_choose_passes_over_refused_variants_unless_forced_or_all_refused():
    device = type("Stand", (), {"refused_variants": {}})()
    cands = [Variant("a"), Variant("b"), Variant("c")]
    with tuning.disabled():
        assert tuning.choose(device, "conv2d", (1,), cands).name == "a"
        device.refused_variants[("conv2d", (1,), "a")] = "why"
        assert tuning.choose(device, "conv2d", (1,), cands).name == "b"
        assert tuning.choose(device, "conv2d", (2,), cands).name == "a"      # another shape class
        device.refused_variants[("conv2d", (1,), "b")] = "why"
        assert tuning.choose(device, "conv2d", (1,), cands).name == "c"
        device.refused_variants[("conv2d", (1,), "c")] = "why"
        assert tuning.choose(device, "conv2d", (1,), cands).name == "a"      # all refused: as if none
        with tuning.forcing({"conv2d": "a"}):
            assert tuning.choose(device, "conv2d", (1,), cands).name == "a"


def test_pass_over_takes_one_choice_per_failed_launch():
    device = type("Stand", (), {"refused_variants": {}})()
    forced, last = _point("a", source="forced"), _point("c", candidates=("c",), shape_class=(2,))
    first, again = _point("a", shape_class=(3,)), _point("b", shape_class=(4,))
    done = tuning.pass_over(device, [(forced, last, first, again), (first, again)], "no")
    assert done == [first]      # the second launch made the same choice: passed over once
    assert device.refused_variants == {("conv2d", (3,), "a"): "no"}
    assert tuning.pass_over(device, [(forced, last)], "no") == []
    tuned_last = _point("c", source="cache", shape_class=(5,))     # a tuned winner, last in the order
    assert tuning.pass_over(device, [(tuned_last,)], "no") == [tuned_last]
    assert tuning.pass_over(object(), [(first,)], "no") == []        # a stand-in keeps no refusals


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_conformance_reports_a_variant_that_does_not_compile_as_a_failure(adapter, broken, monkeypatch):
    """For people testing drivers: the cases pass on the next variant, but the adapter fails,
    and the report names the variant and the compile error."""
    from wgpu_runtime.conformance import report, run as conformance_run

    device = fresh_device(adapter)
    monkeypatch.setattr(conformance_run, "get_device", lambda query: device)
    broken.update(TEXTURE_KERNELS)
    cases = op_cases_of("_FusedConv2D")
    result = conformance_run.run_adapter(device.adapter, cases, [], lambda: None, lambda text: None)
    assert result.cases and result.ops_failed == 0
    assert result.uncompiled and not result.passed
    assert all("conv2d variant 'texture'" in u and "does not compile" in u for u in result.uncompiled), result.uncompiled
    assert result.to_dict()["uncompiled_variants"] == result.uncompiled
    assert report.detail_lines(result)[0].startswith("kernel does not compile here, passed over: conv2d variant 'texture'")


def op_cases_of(op: str) -> list:
    from wgpu_runtime.conformance import op_cases

    return op_cases.case_list([op])


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_variants_passed_over_in_vain_are_not_kept(adapter, broken):
    """Every kernel broken: variants are passed over while planning looks for one that
    compiles, none does, so the error stands and the device keeps no refusal (the next model
    gets the defaults once the kernels compile)."""
    device = fresh_device(adapter)
    model = wr.load_graph_model(default_model_path(), device=device)
    x = np.random.default_rng(2).random((1, 128, 128, 3), dtype=np.float32)
    every = {p.name for p in pipelines.resources.files("wgpu_runtime.kernels").iterdir() if p.name.endswith(".wgsl")}
    broken.update(every)
    with pytest.raises(wr.KernelCompileError):
        model.predict(x)
    assert device.refused_variants == {}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_dynamic_executor_passes_over_a_variant_that_does_not_compile(adapter, broken, tmp_path, caplog):
    rng = np.random.default_rng(4)
    w = np.round(rng.uniform(-2, 2, (64, 64))).astype(np.float32) / 8      # exact products and sums
    x = np.round(rng.uniform(-4, 4, (1, 64))).astype(np.float32)
    want = x @ w @ w @ w
    path = loop_model(tmp_path / "loop", x.shape, "MatMul", w, 3, transpose_a={"b": False}, transpose_b={"b": False})
    with tuning.recording() as points:          # what the MatMul runs on this adapter by default
        model = wr.load_graph_model(path, device=fresh_device(adapter))
        np.testing.assert_array_equal(model.predict(x), want)
    assert model.is_dynamic
    (point,) = {p for p in points if p.family == "matmul"}
    assert len(point.candidates) > 1, point
    programs = model._dynamic._programs.values()
    kernels = {st.kernel for prog in programs for st, _, _ in prog.steps if st.op == "MatMul"}
    assert kernels, "the MatMul's program launched no kernel"

    device = fresh_device(adapter)
    broken.update(kernels)
    with caplog.at_level(logging.WARNING, logger="wgpu_runtime.graph.plan"):
        again = wr.load_graph_model(path, device=device)
        np.testing.assert_array_equal(again.predict(x), want)       # exact: integer-valued eighths
    assert ("matmul", point.shape_class, point.chosen) in device.refused_variants
    assert any(f"'{point.chosen}' does not compile on" in r.getMessage() for r in caplog.records)


def test_bench_records_the_variants_passed_over(broken):
    """bench --json (and its table) says which variants did not compile: a lent GPU's record
    shows it where a tuned kernel fails there."""
    from wgpu_runtime.bench import bench

    device = fresh_device(ADAPTERS[0])
    broken.update(TEXTURE_KERNELS)
    result = bench(default_model_path(), adapter=device, runs=2, warmup=1)
    assert result.passed_over and {v["variant"] for v in result.passed_over} == {"texture"}
    assert all("does not compile" in v["error"] for v in result.passed_over)
    assert all(v["chosen"] != "texture" for v in result.variants if v["family"] in ("conv2d", "matmul"))


def test_tune_skips_a_variant_that_does_not_compile_and_still_tunes(broken, tmp_path, monkeypatch):
    """tune on an adapter that rejects the default convolution kernel: the choice points come
    from the plan made without it, and the candidates left are timed."""
    from wgpu_runtime.graph import autotune

    monkeypatch.setenv("WGPU_RUNTIME_CACHE", str(tmp_path / "cache"))
    device = fresh_device(ADAPTERS[0])
    broken.update(TEXTURE_KERNELS)
    model = wr.load_graph_model(default_model_path(), device=device)
    x = np.random.default_rng(5).random((1, 128, 128, 3), dtype=np.float32)
    sites = autotune.choice_points(model, model._predict_feeds(x))
    conv = [p for p, _, _ in sites if p.family == "conv2d"]
    refused = [p for p in conv if ("conv2d", p.shape_class, "texture") in device.refused_variants]
    assert refused and all("texture" not in p.candidates[:-1] for p in refused)
    assert all(p.chosen != "texture" for p in conv)
