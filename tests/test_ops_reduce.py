"""Reductions and batch norm beyond the registry cases (tests/test_ops.py runs those on both
adapters): FusedBatchNormV3 training outputs against TF, the constant-statistics fold, layer
norm as TF.js models carry it, and long reductions with real-valued data against float64.

Tolerance of long float32 sums: summed in chunks of CHUNK, then sums of chunks: the rounding
error is a random walk, |error| <~ sqrt(n) * eps * ||x||_2; asserted with a 4x margin."""
import numpy as np
import pytest

from wgpu_runtime.graph.single_op import op_model, run_op
from wgpu_runtime.ops import REGISTRY

EPS = np.finfo(np.float32).eps
BN = REGISTRY["FusedBatchNormV3"]


def _kernels(model, feeds, n_outputs=1):
    plan, _ = model.prepare(feeds, [f"op:{k}" for k in range(n_outputs)])
    return [s.kernel for s in plan.steps]


def _bn_inputs(shape, c, rng, empty_stats=False):
    x = rng.uniform(-3, 5, shape).astype(np.float32)
    scale, offset = rng.uniform(0.5, 2, c).astype(np.float32), rng.uniform(-1, 1, c).astype(np.float32)
    if empty_stats:
        return [x, scale, offset, np.zeros(0, np.float32), np.zeros(0, np.float32)]
    return [x, scale, offset, rng.uniform(-1, 1, c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)]


TRAINING = [
    ((2, 7, 5, 6), 6, {}, False),
    ((3, 6, 4, 5), 6, {"data_format": "NCHW"}, False),
    ((2, 3, 3, 4), 4, {"exponential_avg_factor": 0.3}, False),
    ((1, 12, 33, 1), 12, {"data_format": "NCHW"}, True),          # tf_keras LayerNormalization
    ((2, 40, 41, 3), 3, {}, False),                                # 3280 values a channel: 2 passes
]


@pytest.mark.parametrize("shape,c,attrs,empty", TRAINING)
def test_batchnorm_training_outputs_match_tf(device, shape, c, attrs, empty):
    """Outputs 0..4 of FusedBatchNormV3(is_training): y, running mean, unbiased running variance,
    batch mean, biased batch variance -- the reference and the GPU, both against TF."""
    tf = pytest.importorskip("tensorflow")
    inputs = _bn_inputs(shape, c, np.random.default_rng(len(shape) + c), empty)
    attrs = {"epsilon": 0.001, "is_training": True, **attrs}
    want = tf.raw_ops.FusedBatchNormV3(x=inputs[0], scale=inputs[1], offset=inputs[2], mean=inputs[3],
                                       variance=inputs[4], **attrs)
    ref = BN.run_reference(attrs, inputs)
    gpu = run_op("FusedBatchNormV3", attrs, inputs, device, n_outputs=5)
    for k in range(5):
        w = want[k].numpy()
        # TF accumulates the statistics in float32: ~sqrt(n) eps relative
        np.testing.assert_allclose(ref[k], w, rtol=1e-5, atol=1e-5, err_msg=f"reference output {k}")
        np.testing.assert_allclose(gpu[k], w, rtol=1e-5, atol=1e-5, err_msg=f"GPU output {k}")


def test_layer_norm_as_fused_batch_norm(device):
    """tf_keras LayerNormalization reaches TF.js as FusedBatchNormV3(NCHW, is_training, empty
    mean/variance) on x reshaped to [1, rows, features, 1]: each row normalized on its own."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((10, 300)).astype(np.float32) * 3 + 1
    inputs = [x.reshape(1, 10, 300, 1), np.ones(10, np.float32), np.zeros(10, np.float32),
              np.zeros(0, np.float32), np.zeros(0, np.float32)]
    y = run_op("FusedBatchNormV3", {"epsilon": 1e-3, "is_training": True, "data_format": "NCHW"}, inputs,
               device, const_inputs=(1, 2, 3, 4))[0]
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(y.reshape(10, 300), want, rtol=1e-5, atol=1e-5)
    assert not np.isnan(y).any()


def test_constant_statistics_fold_on_the_host(device):
    """A converted model's batch norm (inference, constant statistics): one elementwise kernel."""
    inputs = _bn_inputs((2, 5, 6, 4), 4, np.random.default_rng(3))
    attrs = {"epsilon": 0.001, "is_training": False}
    model = op_model("FusedBatchNormV3", attrs, inputs, device, const_inputs=(1, 2, 3, 4))
    assert _kernels(model, {"in0": inputs[0]}) == ["batchnorm.wgsl"]
    got = model.execute({"in0": inputs[0]}, ["op:0"])[0]
    np.testing.assert_allclose(got, BN.run_reference(attrs, inputs)[0], rtol=1e-5, atol=1e-5)
    # statistics fed at run time: folded on the GPU first
    fed = op_model("FusedBatchNormV3", attrs, inputs, device, const_inputs=())
    feeds = {f"in{i}": a for i, a in enumerate(inputs)}
    assert _kernels(fed, feeds) == ["batchnorm_fold.wgsl", "batchnorm.wgsl"]
    np.testing.assert_allclose(fed.execute(feeds, ["op:0"])[0], got, rtol=1e-6, atol=1e-6)


def _assert_sum_close(got, x64, axis):
    want = x64.sum(axis=axis)
    n = x64.size // want.size
    bound = 4 * np.sqrt(n) * EPS * np.sqrt((x64 ** 2).sum(axis=axis))
    assert (np.abs(got - want) <= bound).all(), f"max error {np.abs(got - want).max():.3g}"


def test_long_sum_and_mean_with_real_values(device):
    """2^20 elements: two passes (1024 chunks of 1024, then their sum)."""
    x = np.random.default_rng(4).uniform(-1, 3, 1 << 20).astype(np.float32)
    model = op_model("Sum", {}, [x, np.array([0], np.int32)], device)
    assert _kernels(model, {"in0": x}) == ["reduce.wgsl"] * 2
    _assert_sum_close(model.execute({"in0": x}, ["op:0"])[0], x.astype(np.float64), 0)
    mean = run_op("Mean", {}, [x, np.array([0], np.int32)], device)[0]
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(), rtol=4 * 1024 * EPS)


def test_middle_axis_sum_with_real_values(device):
    x = np.random.default_rng(5).standard_normal((3, 5000, 7)).astype(np.float32)
    got = run_op("Sum", {"keep_dims": True}, [x, np.array([1], np.int32)], device)[0]
    assert got.shape == (3, 1, 7)
    _assert_sum_close(got[:, 0], x.astype(np.float64), 1)


def test_mean_on_gpu_matches_tf(device):
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(6).standard_normal((2, 9, 11, 16)).astype(np.float32)
    got = run_op("Mean", {"keep_dims": True}, [x, np.array([1, 2], np.int32)], device)[0]
    want = tf.raw_ops.Mean(input=x, axis=[1, 2], keep_dims=True).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_argmax_ties_across_chunks(device):
    """The first index wins also when the tied maxima lie in different chunks / passes."""
    x = np.zeros(70001, np.float32)
    x[[5000, 3000, 69000]] = 7.0
    assert run_op("ArgMax", {}, [x, np.array(0, np.int32)], device)[0] == 3000
    assert run_op("ArgMin", {}, [-x, np.array(0, np.int32)], device)[0] == 3000


def test_long_softmax_rows(device):
    """Rows of 100000: the row statistics take two passes."""
    x = np.random.default_rng(7).uniform(-20, 20, (2, 100000)).astype(np.float32)
    want = REGISTRY["LogSoftmax"].run_reference({}, [x])[0]
    np.testing.assert_allclose(run_op("LogSoftmax", {}, [x], device)[0], want, rtol=1e-5, atol=1e-5)
    soft = run_op("Softmax", {}, [x], device)[0]
    np.testing.assert_allclose(soft, np.exp(want.astype(np.float64)), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(soft.sum(axis=1, dtype=np.float64), 1.0, rtol=1e-4)
