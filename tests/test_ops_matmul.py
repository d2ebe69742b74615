"""MatMul family beyond the registry cases (tests/test_ops.py runs those on both adapters):
_FusedMatMul's reference against a composition of TF raw ops, a classifier-sized product on the
GPU against float64 numpy, weights repacked on the host, split-K with real-valued data, errors."""
import numpy as np
import pytest

from wgpu_runtime import tuning
from wgpu_runtime.errors import GraphError
from wgpu_runtime.graph.single_op import op_model, run_op
from wgpu_runtime.ops import REGISTRY, tiled
from wgpu_runtime.ops.conv import use_subgroups

EPS = np.finfo(np.float32).eps


def _kernels(model, feeds):
    plan, _ = model.prepare(feeds, ["op:0"])
    return [s.kernel for s in plan.steps]


def _tf_fused_matmul(tf, attrs, a, b, bias, *extra):
    y = tf.raw_ops.MatMul(a=a, b=b, transpose_a=bool(attrs.get("transpose_a")),
                          transpose_b=bool(attrs.get("transpose_b")))
    ops = attrs["fused_ops"]
    assert ops[0] == "BiasAdd"
    y = tf.raw_ops.BiasAdd(value=y, bias=bias)
    if ops[1:2] == ["Add"]:    # a residual added before the activation
        y, extra, ops = y + extra[0], extra[1:], ops[:1] + ops[2:]
    act = ops[1] if len(ops) > 1 else None
    if act == "LeakyRelu":
        return tf.raw_ops.LeakyRelu(features=y, alpha=attrs.get("leakyrelu_alpha", 0.2))
    if act == "Prelu":   # TF has no Prelu raw op: max(y, 0) + alpha * min(y, 0)
        return tf.maximum(y, 0.0) + extra[0] * tf.minimum(y, 0.0)
    if act in ("Sigmoid", "Tanh"):
        return getattr(tf.raw_ops, act)(x=y)
    return getattr(tf.raw_ops, act)(features=y) if act else y


@pytest.mark.parametrize("idx", range(len(REGISTRY["_FusedMatMul"].cases)))
def test_fused_matmul_reference_matches_tf_composition(idx):
    tf = pytest.importorskip("tensorflow")
    op = REGISTRY["_FusedMatMul"]
    case = op.cases[idx]
    inputs = case.materialize(seed=idx)
    want = _tf_fused_matmul(tf, case.attrs, *[tf.constant(x) for x in inputs]).numpy()
    got = op.run_reference(case.attrs, inputs)[0]
    # TF sums float32 products; the reference sums in float64: |diff| <= K * eps * sum|a||b|
    bound = inputs[0].shape[0 if case.attrs.get("transpose_a") else 1] * EPS * 4 * 4
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=bound)


@pytest.fixture(scope="module")
def classifier():
    rng = np.random.default_rng(1)
    return rng.standard_normal((512, 1024)).astype(np.float32), rng.standard_normal((1024, 1000)).astype(np.float32)


def _close_to_float64(got, a, b, ta=False, tb=False):
    """A K-term float32 dot product is within ~sqrt(K) eps * |a||b| (random rounding); assert
    a 4x margin on that of the float64 product."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    a64, b64 = (a64.T if ta else a64), (b64.T if tb else b64)
    want = a64 @ b64
    k = a64.shape[1]
    scale = np.sqrt(np.abs(a64) ** 2 @ np.abs(b64) ** 2)       # |a_i| |b_j| per output
    err = np.abs(got - want)
    assert (err <= 4 * np.sqrt(k) * EPS * scale + 1e-30).all(), f"max error {err.max():.3g}"


@pytest.mark.parametrize("weights", ["placeholder", "constant"])
def test_classifier_sized_matmul_on_gpu(device, classifier, weights):
    """512x1024 x 1024x1000 (MobileNetV2's classifier at batch 512), weights fed or constant."""
    a, b = classifier
    got = run_op("MatMul", {}, [a, b], device, const_inputs=(1,) if weights == "constant" else ())[0]
    _close_to_float64(got, a, b)


def test_constant_operands_are_repacked_on_the_host(device):
    """A transposed weight, and K / N not multiples of 4: packed once per model on the host,
    so the run is one matmul dispatch (plus the crop of the padded columns)."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((6, 37)).astype(np.float32)
    b = rng.standard_normal((45, 37)).astype(np.float32)
    model = op_model("MatMul", {"transpose_b": True}, [a, b], device, const_inputs=(1,))
    kernels = _kernels(model, {"in0": a})
    assert kernels == ["matmul_pack.wgsl", "matmul.wgsl", "matmul_pack.wgsl"], kernels   # A (K=37), C crop
    got = model.execute({"in0": a}, ["op:0"])[0]
    _close_to_float64(got, a, b, tb=True)
    a_t = np.ascontiguousarray(a.T)
    got = run_op("MatMul", {"transpose_a": True}, [a_t, b.T.copy()], device, const_inputs=(0,))[0]
    _close_to_float64(got, a_t, b.T, ta=True)


def test_aligned_matmul_is_one_dispatch(device):
    a, b = np.ones((8, 16), np.float32), np.ones((16, 12), np.float32)
    model = op_model("MatMul", {}, [a, b], device)
    assert _kernels(model, {"in0": a, "in1": b}) == ["matmul.wgsl"]


def test_split_k_with_real_values(device):
    """K = 70003 > 32768: split into partial sums added by a second pass (llvmpipe's loop cap)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 70003)).astype(np.float32)
    b = rng.standard_normal((70003, 5)).astype(np.float32)
    model = op_model("MatMul", {}, [a, b], device)
    assert "matmul_splitk.wgsl" in _kernels(model, {"in0": a, "in1": b})
    _close_to_float64(model.execute({"in0": a, "in1": b}, ["op:0"])[0], a, b)


def test_subgroup_kernel_is_the_default_from_subgroup_min_m_rows_where_subgroups_run(device):
    """Vulkan (llvmpipe, subgroups of 8): matmul_subgroup.wgsl from SUBGROUP_MIN_M rows, matmul.wgsl
    below; GL: matmul.wgsl always."""
    for m, sub in ((tiled.SUBGROUP_MIN_M, True), (tiled.SUBGROUP_MIN_M - 1, False)):
        a, b = np.ones((m, 16), np.float32), np.ones((16, 12), np.float32)
        kernel = "matmul_subgroup.wgsl" if sub and use_subgroups(device) else "matmul.wgsl"
        assert _kernels(op_model("MatMul", {}, [a, b], device), {"in0": a, "in1": b}) == [kernel]


@pytest.mark.parametrize("variant", [tiled.REGBLOCK.name, tiled.SUBGROUP.name])
def test_batched_split_k_with_real_values_under_each_register_blocked_variant(device, variant):
    """Broadcast batch (2, 1) x (3,), 20x9 outputs (ragged: 3 row tiles of 8, 9 columns), K = 33001
    (2 split-K passes), real values: each product within the float32 bound of float64."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((2, 1, 20, 33001)).astype(np.float32)
    b = rng.standard_normal((3, 33001, 9)).astype(np.float32)
    key = ("matmul", variant, device.name)
    before = tiled.LAUNCHED[key]
    with tuning.forcing({"matmul": variant}):
        model = op_model("BatchMatMulV2", {}, [a, b], device)
        assert "matmul_splitk.wgsl" in _kernels(model, {"in0": a, "in1": b})
        got = model.execute({"in0": a, "in1": b}, ["op:0"])[0]
    offered = variant == tiled.REGBLOCK.name or use_subgroups(device)
    assert (tiled.LAUNCHED[key] > before) == offered
    for i in range(2):
        for j in range(3):
            _close_to_float64(got[i, j], a[i, 0], b[j])


def test_fused_matmul_with_constant_prelu_alpha(device):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((5, 12)).astype(np.float32), rng.standard_normal((12, 9)).astype(np.float32)
    bias, alpha = rng.standard_normal(9).astype(np.float32), rng.uniform(0, 1, 9).astype(np.float32)
    attrs = {"fused_ops": ["BiasAdd", "Prelu"]}
    got = run_op("_FusedMatMul", attrs, [a, b, bias, alpha], device, const_inputs=(1, 2, 3))[0]
    want = REGISTRY["_FusedMatMul"].run_reference(attrs, [a, b, bias, alpha])[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_batch_matmul_v2_broadcasts_a_constant_operand(device):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 5)).astype(np.float32)
    w = rng.standard_normal((5, 6)).astype(np.float32)
    got = run_op("BatchMatMulV2", {}, [x, w], device, const_inputs=(1,))[0]
    np.testing.assert_allclose(got, np.matmul(x.astype(np.float64), w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op,attrs,shapes,message", [
    ("MatMul", {}, [(3, 4), (5, 2)], "inner dimensions differ"),
    ("MatMul", {}, [(2, 3, 4), (4, 2)], "rank-2"),
    ("BatchMatMul", {}, [(2, 3, 4), (3, 4, 2)], "equal batch dimensions"),
    ("BatchMatMulV2", {}, [(2, 3, 4), (3, 4, 2)], "do not broadcast"),
])
def test_shape_errors_name_the_node(device, op, attrs, shapes, message):
    inputs = [np.zeros(s, np.float32) for s in shapes]
    with pytest.raises(GraphError, match=message):
        run_op(op, attrs, inputs, device)
