"""Compiled pipelines are cached (a second inference, a new input shape, a second model compile
nothing) and an inference is one submit."""
import sys

import numpy as np
import pytest

import wgpu_runtime as wr
from wgpu_runtime.models import default_model_path


def test_second_inference_new_shape_and_second_model_compile_nothing(device):
    model = wr.load_graph_model(default_model_path(), adapter=device.backend)
    x = np.random.default_rng(0).random((1, 128, 128, 3), dtype=np.float32)
    model.predict(x)                                  # may compile (unless an earlier test did)
    before = device.pipelines.compiled
    model.predict(x)
    assert device.pipelines.compiled == before, "second inference compiled pipelines"
    x2 = np.concatenate([x, x])
    y2 = model.predict(x2)              # batch 2: a new plan; shapes live in uniforms, so the
    # pipelines are reused -- except the classifier matmul, whose rows-per-thread tile (a WGSL
    # override baked for speed) follows the row count.
    assert device.pipelines.compiled - before <= 1, "new input shape recompiled the model's kernels"
    np.testing.assert_array_equal(y2[0], y2[1])
    after = device.pipelines.compiled
    model.predict(x2)
    again = wr.load_graph_model(default_model_path(), adapter=device.backend)
    again.predict(x)
    again.predict(x2)
    assert device.pipelines.compiled == after, "a second model (or a repeated shape) compiled pipelines"


def test_one_inference_is_one_submit(device, monkeypatch):
    # Counts the submits our code makes (wgpu-py's map_sync makes one of its own to map the
    # staging buffer the outputs are read from).
    model = wr.load_graph_model(default_model_path(), adapter=device.backend)
    x = np.zeros((1, 128, 128, 3), np.float32)
    model.predict(x)
    ours = []
    real = type(device.queue).submit

    def submit(self, buffers):
        if sys._getframe(1).f_globals["__name__"].startswith("wgpu_runtime"):
            ours.append(len(buffers))
        return real(self, buffers)

    monkeypatch.setattr(type(device.queue), "submit", submit)
    model.predict(x)
    # one submit: the plan's body (encoded during the previous call, graph/executor.py) and the
    # tail copying the outputs to the staging buffer
    assert ours == [2], f"our submits per inference (command buffers each): {ours}"


def test_pipelines_differing_in_constants_share_one_shader_module(device):
    from wgpu_runtime.pipelines import PipelineCache

    cache = PipelineCache(device)                     # a fresh cache: nothing compiled yet
    plain = cache.get("softmax.wgsl", constants={"LOG": False})
    log = cache.get("softmax.wgsl", constants={"LOG": True})
    assert plain is not log and cache.compiled == 2 and cache.modules_compiled == 1
    assert cache.get("softmax.wgsl", constants={"LOG": True}) is log and cache.compiled == 2


def test_prebuilt_cffi_types_are_the_ones_cffi_parses(device):
    # ffi_types.warm() (run when wgpu is first imported through the runtime) stores C types under
    # the strings wgpu-py passes to ffi.new / ffi.callback; each must be the very object cffi's
    # own parse of that string gives, so wgpu-py builds the same structs either way.
    from wgpu.backends.wgpu_native import ffi

    from wgpu_runtime import ffi_types

    ffi_types.warm()
    samples = ["WGPUComputePipelineDescriptor *", "WGPUConstantEntry[]", "WGPUBindGroupEntry[]",
               "WGPUShaderSourceWGSL *", "WGPUBufferDescriptor *", "WGPUCommandBuffer[]", "WGPUFeatureName[]",
               "uint32_t *", "uint8_t[]", "void *", "WGPUChainedStruct * ",
               "void(WGPUMapAsyncStatus, WGPUStringView, void *, void *)",
               "void(WGPURequestDeviceStatus, WGPUDevice, WGPUStringView, void *, void *)"]
    for text in samples:
        assert text in ffi._parsed_types, text
        stored, raw = ffi._parsed_types[text]
        tp = ffi._parser.parse_type(text)                 # what cffi would do without the cache
        with ffi._lock:
            parsed = ffi._get_cached_btype(tp.as_function_pointer() if tp.is_raw_function else tp)
        assert stored is parsed and raw == tp.is_raw_function, text


def test_a_new_process_parses_no_c_type_strings(tmp_path):
    # Each C type string cffi parses costs a pycparser run over wgpu.h's ~430 typedefs (20-60 ms
    # here; docs/benchmarks.md 2026-12-04). From device open to the first result, none should be.
    import json
    import subprocess

    code = (
        "import json, numpy as np, wgpu_runtime as wr\n"
        "from wgpu_runtime.models import default_model_path\n"
        "from wgpu.backends.wgpu_native import ffi\n"
        "seen = []\n"
        "real = ffi._parser.parse_type\n"
        "ffi._parser.parse_type = lambda text: seen.append(text) or real(text)\n"
        "m = wr.load_graph_model(default_model_path(), adapter='vulkan')\n"
        "m.predict(np.zeros((1, 128, 128, 3), np.float32))\n"
        "print(json.dumps(seen))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_bench_first_inference_runs_two_new_processes():
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "bench", "--json", "--runs", "1", "--warmup", "0",
                          "--adapter", "vulkan", "--first-inference"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)["first_new_process"]
    for kind in ("cold", "warm"):
        r = first[kind]
        assert r["pipelines_compiled"] > 0 and r["load_ms"] > 0 and r["first_inference_ms"] > 0
        assert r["process_to_first_result_ms"] >= r["load_ms"] + r["first_inference_ms"]
    assert "MESA_SHADER_CACHE_DIR" in first["shader_cache_vars"]


def test_first_inference_child_takes_the_precision():
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime.first_inference", str(default_model_path()),
                          "--adapter", "vulkan", "--precision", "float16"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.splitlines()[-1])
    assert r["precision"] == "float16" and r["pipelines_compiled"] > 0


def test_a_plans_pipelines_compile_in_the_background_and_are_bound_compiled(device, tmp_path):
    from concurrent.futures import Future

    from fixtures.tiny_models import tiny_model, tiny_reference

    model = wr.load_graph_model(tiny_model(tmp_path / "t"), device=device)
    x = np.random.default_rng(1).uniform(-1, 1, (5, 8)).astype(np.float32)
    plan, _ = model.prepare({"x": x})
    assert all(st.pipeline is None or not isinstance(st.pipeline, Future) for st in plan.steps)
    assert all(st.bind_group is not None for st in plan.steps if st.pipeline is not None)
    assert (device.pipelines._pool is not None) == (device.backend != "OpenGL")
    y = model.predict(x)     # float32 products of 16 terms against float64: 1e-5 of the scale
    ref = tiny_reference(x)
    assert np.max(np.abs(y - ref)) <= 1e-5 * np.max(np.abs(ref))


def test_a_kernel_that_fails_to_compile_names_its_node_and_is_compiled_again_next_time(device, tmp_path, monkeypatch):
    """The failure surfaces when the plan binds its pipelines (compiled in the background on
    Vulkan, at once on OpenGL), names the node, and leaves no broken cache entry behind."""
    from fixtures.tiny_models import tiny_model
    from wgpu_runtime import pipelines

    model = wr.load_graph_model(tiny_model(tmp_path / "t"), device=device)
    real = pipelines.render

    def broken(name, template=None):        # every kernel's WGSL with a syntax error appended
        return real(name, template) + "\nfn broken( {"
    x = np.ones((7, 8), np.float32)
    monkeypatch.setattr(pipelines, "render", broken)
    cache = pipelines.PipelineCache(device)        # a fresh cache: every kernel compiles
    monkeypatch.setitem(device.__dict__, "pipelines", cache)
    with pytest.raises(wr.GraphError, match=r"node '.*' \(.*\): kernel .* does not compile"):
        model.predict(x)
    monkeypatch.setattr(pipelines, "render", real)
    before = cache.compiled
    y = model.predict(x)                    # compiled again, correctly
    assert cache.compiled > before and y.shape == (7, 4)
