"""Every loop of every kernel ends by construction.

The runtime creates its shader modules without naga's loop bounding (wgpu_runtime/
shader_modules.py): a loop that never ended would hang the GPU instead of being cut off. So the
kernels may hold only ``for`` loops of the one shape that always ends: a counter declared in the
header, compared with ``<``, ``<=`` or ``>`` against a bound, stepped by ``++``, ``--`` or
``+= <a name or number>`` in the same direction, and never assigned in the body. (Bounds are
constants, overrides or the host's uniform sizes, each far below 2^32, so no counter wraps.)
"""
from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pytest

from fixtures.dispatch import dispatch_once
from wgpu_runtime import pipelines, shader_modules

FOR = re.compile(r"\bfor\s*\(")
HEADER = re.compile(r"var (\w+)\s*=\s*[^;]+;\s*(\w+)\s*(<=|<|>)\s*[^;]+;\s*(\w+)\s*(\+\+|--|\+=\s*[\w.]+)\s*$")


def _kernel_files() -> list[str]:
    return sorted(p.name for p in resources.files("wgpu_runtime.kernels").iterdir() if p.name.endswith(".wgsl"))


def _code(text: str) -> str:
    """The text without // comments."""
    return re.sub(r"//[^\n]*", "", text)


def _closing(text: str, open_at: int, opener: str, closer: str) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        depth += (text[i] == opener) - (text[i] == closer)
        if depth == 0:
            return i
    raise AssertionError("unbalanced brackets")


def loop_problems(text: str) -> list[str]:
    """Why the loops of WGSL ``text`` may not end (empty when every loop ends by construction)."""
    code = _code(text)
    problems = [f"a `{m.group(1)}` loop" for m in re.finditer(r"\b(loop|while)\b", code)]
    for m in FOR.finditer(code):
        close = _closing(code, m.end() - 1, "(", ")")
        header = " ".join(code[m.end():close].split())
        h = HEADER.match(header)
        if h is None:
            problems.append(f"for ({header}): not a counter loop")
            continue
        var, cmp_var, op, step_var, step = h.groups()
        if not (cmp_var == step_var == var):
            problems.append(f"for ({header}): compares or steps another variable than its counter")
        elif (op == ">") != (step == "--"):
            problems.append(f"for ({header}): steps away from its bound")
        body_open = code.index("{", close)
        body = code[body_open:_closing(code, body_open, "{", "}")]
        if re.search(rf"\b{var}\s*(=(?!=)|\+=|-=|\+\+|--)", body):
            problems.append(f"for ({header}): its counter is assigned in the loop's body")
    return problems


@pytest.mark.parametrize("name", _kernel_files())
def test_every_loop_of_a_kernel_ends(name):
    assert loop_problems(pipelines.kernel_source(name)) == []


@pytest.mark.parametrize("bad", [
    "fn f() { loop { if (x) { break; } } }",
    "fn f() { while (x > 0u) { x--; } }",
    "fn f() { for (var i = 0u; i < n; i--) { } }",
    "fn f() { for (var i = n; i > 0u; i++) { } }",
    "fn f() { for (var i = 0u; j < n; i++) { } }",
    "fn f() { for (var i = 0u; i < n; i++) { i = 0u; } }",
    "fn f() { for (; ; ) { } }",
])
def test_the_check_finds_a_loop_that_may_not_end(bad):
    assert loop_problems(bad)


def test_a_comment_is_not_a_loop():
    assert loop_problems("// loop while\nfn f() { for (var i = 0u; i < n; i++) { a[i] = 0.0; } }") == []


def test_loop_bounding_is_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv(shader_modules.LOOP_BOUNDING_ENV, raising=False)
    assert not shader_modules.loop_bounding()    # the shipped wgpu-native has the trusted call
    monkeypatch.setenv(shader_modules.LOOP_BOUNDING_ENV, "1")
    assert shader_modules.loop_bounding()
    monkeypatch.setenv(shader_modules.LOOP_BOUNDING_ENV, "0")
    assert not shader_modules.loop_bounding()


@pytest.mark.parametrize("bounding", ["0", "1"])
def test_a_kernel_that_does_not_compile_raises_either_way(device, monkeypatch, bounding):
    """The trusted call reports a WGSL error as wgpu-py's create_shader_module does."""
    import wgpu
    monkeypatch.setenv(shader_modules.LOOP_BOUNDING_ENV, bounding)
    with pytest.raises(wgpu.GPUError, match="no_such_function"):
        shader_modules.create(device.device, "@compute @workgroup_size(1) fn main() { no_such_function(); }", "bad")


@pytest.mark.parametrize("bounding", ["0", "1"])
def test_a_module_computes_the_same_either_way(device, monkeypatch, bounding):
    """A kernel with loops, made each way, run on the device: the sum of 0..n-1 per lane."""
    import wgpu
    monkeypatch.setenv(shader_modules.LOOP_BOUNDING_ENV, bounding)
    code = """
@group(0) @binding(0) var<storage, read_write> y: array<u32>;
@compute @workgroup_size(8) fn main(@builtin(local_invocation_index) i: u32) {
    var s = 0u;
    for (var k = 0u; k < 100u + i; k++) { s += k; }
    y[i] = s;
}"""
    d = device.device
    module = shader_modules.create(d, code, "loops")
    pipeline = d.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"})
    buf = d.create_buffer(size=32, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC)
    dispatch_once(d, pipeline, [buf])
    got = np.frombuffer(d.queue.read_buffer(buf), dtype=np.uint32)
    n = 100 + np.arange(8)
    np.testing.assert_array_equal(got, n * (n - 1) // 2)


def test_without_the_trusted_call_modules_keep_the_loop_bounding(device, monkeypatch):
    """A wgpu-native without wgpuDeviceCreateShaderModuleTrusted: wgpu-py's ordinary call, and
    loop_bounding() says so (bench records it)."""
    monkeypatch.delenv(shader_modules.LOOP_BOUNDING_ENV, raising=False)
    monkeypatch.setattr(shader_modules, "_trusted_call", lambda: None)
    assert shader_modules.loop_bounding()
    made = []
    real = type(device.device).create_shader_module
    monkeypatch.setattr(type(device.device), "create_shader_module",
                        lambda self, **kw: made.append(kw["label"]) or real(self, **kw))
    shader_modules.create(device.device, "@compute @workgroup_size(1) fn main() { }", "plain")
    assert made == ["plain"]
