"""Every kernel variant a lowering can offer (wgpu_runtime/ops/tiled.py: the register-blocked
kernels and each workgroup-memory tile) runs every registry case of the ops it serves, forced
with tuning.forcing, on each adapter, against the numpy reference with the registry's tolerance
(the conformance machinery: conformance/op_cases.run_case; matmuls also with B as a model
weight, as the texture variant needs). A variant a device or a problem
cannot take (workgroup limits, a tile far bigger than the output) is not among that lowering's
candidates and the case runs the first candidate instead; each variant must still have run on
some case on some adapter (no variant passes by never running)."""
import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from wgpu_runtime import get_device, tuning
from wgpu_runtime.conformance.models import ModelUnderTest
from wgpu_runtime.conformance.op_cases import run_case
from wgpu_runtime.models import default_model_path
from wgpu_runtime.ops import REGISTRY, tiled
from wgpu_runtime.ops import matmul as mm
from wgpu_runtime.ops.common import cdiv
from wgpu_runtime.ops.conv import use_subgroups

from conftest import ADAPTERS

# the ops whose lowerings choose among each family's variants (Einsum: through BatchMatMulV2)
FAMILIES = {
    "matmul": ["MatMul", "_FusedMatMul", "BatchMatMul", "BatchMatMulV2", "Einsum"],
    "conv2d": ["Conv2D", "_FusedConv2D", "Conv2DBackpropInput"],
    "depthwise": ["DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"],
}
VARIANTS = [(family, name) for family in FAMILIES for name in tiled.variant_names(family)]
# input positions that models hold as weights: the matmul family runs every case a second time
# with these as constants (the texture variant takes a weight as B only)
WEIGHTS = {"MatMul": (1,), "_FusedMatMul": (1,)}


@pytest.mark.parametrize("family,variant", VARIANTS, ids=[f"{f}-{v}" for f, v in VARIANTS])
def test_variant_passes_every_registry_case_on_every_adapter(family, variant):
    failures, ran = [], {}
    for adapter in ADAPTERS:
        device = get_device(adapter)
        key = (family, variant, device.name)
        before = tiled.LAUNCHED[key]
        with tuning.forcing({family: variant}):
            for op in FAMILIES[family]:
                for i in range(len(REGISTRY[op].cases)):
                    for weights in {(), WEIGHTS.get(op, ())}:
                        r = run_case(op, i, device, weights)
                        if not r.passed:
                            failures.append(f"{op} case {i} ({r.note}; weights {weights}) on {device.backend}: "
                                            f"{r.message}")
        ran[device.backend] = tiled.LAUNCHED[key] - before
    assert not failures, f"{family} variant {variant}:\n" + "\n".join(failures)
    assert sum(ran.values()) > 0, f"{family} variant {variant} was never a candidate on {list(ran)}"


def test_variant_names_cover_the_candidates_lowerings_build():
    """The names the test above forces include every candidate a lowering builds (here: a big
    product, which every tile fitting the device suits)."""
    device = get_device(ADAPTERS[0])
    offered = {v.name for v in tiled._order(device, 4096, 4096, 1)}
    assert offered <= set(tiled.variant_names("matmul"))
    assert tiled.REGBLOCK.name in offered and len(offered) > 1
    with tuning.recording() as points:
        tiled.matmul_variant(device, 4096, 4096, 4096, 1, subgroup=True)
    assert set(points[0].candidates) <= set(tiled.variant_names("matmul"))
    assert tiled.SUBGROUP.name in points[0].candidates


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_subgroup_matmul_is_offered_only_where_subgroups_run(adapter):
    """matmul_subgroup.wgsl is a candidate only where llvmpipe runs subgroups of 8 (Vulkan here,
    never GL), the default from SUBGROUP_MIN_M rows, after the register-blocked kernel below."""
    device = get_device(adapter)
    sub = use_subgroups(device)
    with tuning.recording() as points:
        for m in (1, tiled.SUBGROUP_MIN_M - 1, tiled.SUBGROUP_MIN_M, 512):
            tiled.matmul_variant(device, m, 512, 512, 1, subgroup=sub)
    names = [p.candidates for p in points]
    if device.backend == "OpenGL":
        assert not sub, "the GL adapter must never run the subgroup kernel"
    if not sub:
        assert all(tiled.SUBGROUP.name not in c for c in names), names
        return
    assert [c.index(tiled.SUBGROUP.name) for c in names] == [1, 1, 0, 0], names


# A hardware adapter as tiled.py sees one (not software; WebGPU's default limits): no such
# adapter exists here, and the ordering rules are what is checked, not a kernel's speed.
HARDWARE = SimpleNamespace(is_software=False, name="hardware stand-in", limits={})


def _candidates(fn, *args, **kw) -> list[str]:
    with tuning.disabled(), tuning.recording() as points:
        fn(*args, **kw)
    return list(points[-1].candidates)


def test_split_k_forms_are_offered_where_the_output_leaves_a_big_gpu_idle():
    """MobileNetV2's 7x7x960 -> 160 projection at batch 1 (49 pixels, K 960): its best tile
    launches a handful of workgroups, so that tile's split-K form comes first on hardware; a
    big output is never split; a short K cannot be."""
    g = SimpleNamespace(n=1, h=7, w=7, c=960, kh=1, kw=1, sh=1, sw=1, dh=1, dw=1, pt=0, pl=0, oh=7, ow=7)
    names = _candidates(tiled.conv_variant, HARDWARE, g, 49, 40, 240, False)
    assert names[0].endswith(tiled.SPLIT_SUFFIX) and names[1] == names[0][:-len(tiled.SPLIT_SUFFIX)], names
    assert set(names) <= set(tiled.variant_names("conv2d"))
    t = next(t for t in tiled.TILES if t.name == names[1])
    chunk = tiled.split_chunk(240, t.bk // 4, cdiv(49, t.bm) * cdiv(160, t.bn), t.k4_chunk())
    assert chunk % (t.bk // 4) == 0 and chunk >= tiled.MIN_SPLIT_K4 and 2 <= cdiv(240, chunk)
    big = tiled._order(HARDWARE, 4096, 4096, 1, 1024)
    assert not [v.name for v in big if v.get("split")], "a 4096x4096 output fills the GPU unsplit"
    assert not [v for v in tiled._order(HARDWARE, 49, 160, 1, 2 * tiled.MIN_SPLIT_K4 - 1) if v.get("split")]


def test_a_classifier_at_batch_1_gets_the_subgroup_gemv_or_a_split_k_first_on_hardware_only():
    """[1, 1280] x [1280, 1000]: matmul.wgsl would sum all of K in one workgroup. On hardware
    with subgroups and a weight as B, matmul_gemv_subgroup.wgsl comes first (one pass, lanes along
    K), else matmul.wgsl's split-K form. Software adapters (every local one) keep their default
    first and offer the new variants only after every older candidate, for the autotuner."""
    blocked = mm._groups(1, 250, 1)
    assert blocked < tiled.FILL_GROUPS // 4
    names = _candidates(tiled.matmul_variant, HARDWARE, 1, 1000, 1280, 1, blocked_groups=blocked)
    assert names[0] == tiled.REGBLOCK_SPLIT.name and tiled.REGBLOCK.name in names, names
    names = _candidates(tiled.matmul_variant, HARDWARE, 1, 1000, 1280, 1, blocked_groups=blocked, gemv=True)
    assert names[:2] == [tiled.GEMV.name, tiled.REGBLOCK_SPLIT.name], names
    new = {tiled.GEMV.name, tiled.REGBLOCK_SPLIT.name}
    for adapter in ADAPTERS:
        device = get_device(adapter)
        if not device.is_software:      # (a lent GPU: the stand-in above says what hardware gets)
            continue
        kw = {"subgroup": use_subgroups(device), "texture": True}
        before = _candidates(tiled.matmul_variant, device, 1, 1000, 1280, 1, **kw)
        after = _candidates(tiled.matmul_variant, device, 1, 1000, 1280, 1, blocked_groups=blocked,
                            gemv="subgroup" in device.features, **kw)
        older = [n for n in after if n not in new and not n.endswith(tiled.SPLIT_SUFFIX)]
        assert older == [n for n in before if not n.endswith(tiled.SPLIT_SUFFIX)], (before, after)
        assert after[:len(older)] == older, after
    # too many rows for the gemv kernel, or a product big enough to fill the GPU: neither
    assert tiled.GEMV.name not in _candidates(tiled.matmul_variant, HARDWARE, tiled.GEMV_MAX_M + 1, 1000, 1280, 1,
                                              gemv=True)
    assert tiled.REGBLOCK_SPLIT.name not in _candidates(tiled.matmul_variant, HARDWARE, 4096, 4096, 4096, 1,
                                                        blocked_groups=mm._groups(4096, 1024, 1))


def test_subgroup_gemv_is_right_at_another_subgroup_width():
    """matmul_gemv_subgroup.wgsl must not depend on the subgroup width (32 on NVIDIA, 8 on this
    machine's lavapipe): lavapipe with 128-bit vectors (LP_NATIVE_VECTOR_WIDTH=128) runs
    subgroups of 4. Every registry case the variant takes passes there too, in a new process,
    and so does the longest K it is offered for 8 rows (tiled.gemv_fits: llvmpipe's loop cap,
    which the narrowest subgroup meets first)."""
    if not any(a.lower().startswith("vulkan") for a in ADAPTERS):
        pytest.skip("needs the Vulkan adapter (the GL one has no subgroups)")
    if "llvmpipe" not in get_device("vulkan").name:
        pytest.skip("LP_NATIVE_VECTOR_WIDTH sets the subgroup width of lavapipe only (a real GPU's is fixed)")
    script = textwrap.dedent("""
        import json
        from wgpu_runtime import get_device, tuning
        from wgpu_runtime.conformance.op_cases import run_case
        from wgpu_runtime.ops import REGISTRY, tiled
        dev = get_device("vulkan")
        key = ("matmul", tiled.GEMV.name, dev.name)
        ran, failed = 0, []
        for op, weights in (("MatMul", (1,)), ("_FusedMatMul", (1,))):
            for i in range(len(REGISTRY[op].cases)):
                before = tiled.LAUNCHED[key]
                with tuning.forcing({"matmul": tiled.GEMV.name}):
                    r = run_case(op, i, dev, weights)
                ran += tiled.LAUNCHED[key] > before
                if not r.passed:
                    failed.append(f"{op} case {i}: {r.message}")
        # the longest K tiled.gemv_fits lets 8 rows take (the loop cap at 4 lanes), integer-valued: exact
        import numpy as np
        from wgpu_runtime.graph.single_op import op_model
        k4 = max(k for k in range(1, 40000) if tiled.gemv_fits(8, k))
        rng = np.random.default_rng(0)
        a = np.round(2 * rng.standard_normal((8, 4 * k4))).astype(np.float32)
        b = np.round(2 * rng.standard_normal((4 * k4, 5))).astype(np.float32)
        before = tiled.LAUNCHED[key]
        with tuning.forcing({"matmul": tiled.GEMV.name}):
            got = op_model("MatMul", {}, [a, b], dev, const_inputs={1}).execute({"in0": a})
        got = np.asarray(got[0] if isinstance(got, (list, tuple)) else got)
        ran += tiled.LAUNCHED[key] > before
        if not np.array_equal(got, a.astype(np.float64) @ b):
            failed.append(f"8 x {4 * k4} x 5: max error {np.abs(got - a.astype(np.float64) @ b).max()}")
        print(json.dumps({"device": dev.name, "ran": ran, "failed": failed}))
    """)
    # Mesa's shader cache does not key on the vector width: without disabling it, pipelines
    # compiled 8 lanes wide by an earlier process would run here (and hide a width-4 bug)
    env = {**os.environ, "LP_NATIVE_VECTOR_WIDTH": "128", "MESA_SHADER_CACHE_DISABLE": "true"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "128 bits" in result["device"], f"lavapipe did not take the 128-bit width: {result['device']}"
    assert result["ran"] >= 10 and not result["failed"], result


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_real_model_passes_conformance_with_the_split_k_forms_and_the_gemv_forced(adapter):
    """The embedded MobileNetV2 with the split-K forms forced on every convolution that can split
    (and matmul.wgsl's, or the subgroup gemv where the adapter has subgroups, on its classifier),
    against the numpy reference executor and the stored TensorFlow outputs (conformance's model
    check, its tolerance policy)."""
    device = get_device(adapter)
    gemv = tiled.GEMV.name if "subgroup" in device.features else tiled.REGBLOCK_SPLIT.name
    force = {"conv2d": "tiled_32x32_k16_4x4" + tiled.SPLIT_SUFFIX, "matmul": gemv}
    before = dict(tiled.LAUNCHED)
    with tuning.forcing(force):
        result = ModelUnderTest(default_model_path()).check(device)
    ran = {k[1]: n - before.get(k, 0) for k, n in tiled.LAUNCHED.items()
           if k[2] == device.name and n > before.get(k, 0)}
    assert result.passed and result.checks, result.to_dict()
    assert ran.get(force["conv2d"], 0) >= 5 and ran.get(gemv) == 1, ran


def test_hardware_plan_tool_lists_a_models_hardware_defaults():
    """tools/hardware_plan.py (for preparing a lent-GPU run): the embedded model's late 1x1
    convolutions get a split-K form and its classifier the subgroup gemv on a hardware adapter."""
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "hardware_plan.py")
    out = subprocess.run([sys.executable, tool, str(default_model_path()), "--adapter", ADAPTERS[0]],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith(("conv ", "matmul "))]
    assert any(r[0] == "conv" and r[6].endswith(tiled.SPLIT_SUFFIX) for r in rows), out.stdout
    assert any(r[0] == "matmul" and tiled.GEMV.name in r for r in rows), out.stdout
