"""Every kernel variant a lowering can offer (wgpu_runtime/ops/tiled.py: the register-blocked
kernels and each workgroup-memory tile) runs every registry case of the ops it serves, forced
with tuning.forcing, on each adapter, against the numpy reference with the registry's tolerance
(the conformance machinery: conformance/op_cases.run_case; matmuls also with B as a model
weight, as the texture variant needs). A variant a device or a problem
cannot take (workgroup limits, a tile far bigger than the output) is not among that lowering's
candidates and the case runs the first candidate instead; each variant must still have run on
some case on some adapter (no variant passes by never running)."""
import pytest

from wgpu_runtime import get_device, tuning
from wgpu_runtime.conformance.op_cases import run_case
from wgpu_runtime.ops import REGISTRY, tiled
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
