"""Models with control flow, TensorLists/TensorArrays and data-dependent shapes, built in
TensorFlow and converted by the official converter with v1 and v2 control flow
(tests/fixtures/build_dynamic_models.py), run on each adapter and compared with TensorFlow's outputs.

Comparisons: integers exactly; floats within FLOAT_TOL of the output's scale. Selections with
ties (NMS, TopK) are compared in a way that is right under ties without loosening anything:
the scores of the selected items, position by position, exactly (TF's own values), and the
selected indices as sets within each group of equal scores.
"""
from __future__ import annotations

import numpy as np
import pytest

from wgpu_runtime.errors import GraphError
from wgpu_runtime.format import load_artifacts
from wgpu_runtime.graph.model import GraphModel
from wgpu_runtime.tolerance import Tolerance, assert_close
from fixtures.dynamic_models import ensure, fixture

FIXTURES = ["loops_v1", "loops_v2", "detect_v1", "detect_v2", "misc_v1", "misc_v2", "tables_v1", "tables_v2",
            "tensorarray_v3"]
# float32 sums of a few terms (reduce_sum in a loop body, einsum, a 3x3 conv) in another order
# than TensorFlow's; measured <= 4 ULP of the output's scale on lavapipe/llvmpipe
FLOAT_TOL = Tolerance(64.0, "float32 sums of a few terms in another order than TensorFlow's")
# Soft-NMS decays scores by exp(): numpy's float32 exp and TensorFlow's (C library) differ by 1 ULP
SOFT_NMS_TOL = Tolerance(4.0, "exp() of two libm implementations, a few multiplications")


@pytest.fixture(scope="module", autouse=True)
def _built():
    ensure(*FIXTURES)


def _run(device, name):
    path, ins, outs = fixture(name)
    model = GraphModel(load_artifacts(path), device)
    keys = sorted(outs)
    got = model.execute(ins, [outs[k][0] for k in keys])
    return model, ins, {k: g for k, g in zip(keys, got)}, {k: outs[k][1] for k in keys}


def same_selection(got, want, want_scores, what):
    """Indices ``got`` select what ``want`` does: equal scores position by position (TF's), and
    within each run of equal scores the same set of indices."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: {got.shape} != {want.shape}"
    scores = np.asarray(want_scores)
    start = 0
    for end in range(1, len(want) + 1):
        if end == len(want) or scores[end] != scores[start]:
            assert sorted(got[start:end]) == sorted(want[start:end]), \
                f"{what}: positions {start}..{end - 1} (score {scores[start]}) select {got[start:end]}, TF {want[start:end]}"
            start = end


def _compare(got, want, what):
    if want.dtype.kind in "US":                           # strings (stored as unicode)
        assert [str(x) for x in got.reshape(-1)] == want.reshape(-1).tolist() and got.shape == want.shape, what
    elif want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want.astype(got.dtype) if want.dtype == np.int64 else want, err_msg=what)
    else:
        assert_close(got, want, FLOAT_TOL, what, per="tensor")


@pytest.mark.parametrize("name", FIXTURES)
def test_model_matches_tensorflow(device, name):
    model, ins, got, want = _run(device, name)
    assert model.is_dynamic == (not name.startswith("misc")), "misc has no control flow: one static plan"
    special: set = set()
    if name.startswith("detect"):
        scores = ins["scores"]
        same_selection(got["nms3"], want["nms3"], scores[want["nms3"]], "nms3")
        np.testing.assert_array_equal(got["picked"], ins["boxes"][got["nms3"]] * 2, err_msg="picked")
        n4 = int(want["valid4"])
        assert int(got["valid4"]) == n4
        same_selection(got["nms4"][:n4], want["nms4"][:n4], scores[want["nms4"][:n4]], "nms4")
        np.testing.assert_array_equal(got["nms4"][n4:], want["nms4"][n4:], err_msg="nms4 padding")
        assert_close(got["scores5"], want["scores5"], SOFT_NMS_TOL, "scores5")
        same_selection(got["nms5"], want["nms5"], want["scores5"], "nms5")
        np.testing.assert_array_equal(got["top_values"], want["top_values"], err_msg="top_values")
        same_selection(got["top_indices"], want["top_indices"], want["top_values"], "top_indices")
        special = {"nms3", "picked", "nms4", "valid4", "scores5", "nms5", "top_values", "top_indices"}
    for k in sorted(set(want) - special):
        _compare(got[k], want[k], f"{name} {k} on {device.backend}")


def _halvings(x) -> int:
    v, n = x * np.float32(3.0), 0
    while np.max(np.abs(v)) > 1.0:
        v, n = v * np.float32(0.5), n + 1
    return n


@pytest.mark.parametrize("name", ["loops_v1", "loops_v2"])
def test_loops_read_back_only_predicates_on_data(device, name):
    """Loop counters, bounds fed as inputs, indices and TensorList bookkeeping stay on the host:
    the only reads are predicates the GPU computed -- each test of the data-dependent while loop,
    the two conds on `acc > 0`, the cond in each iteration of another loop -- and the outputs,
    all at once: one submit each."""
    path, ins, outs = fixture(name)
    model = GraphModel(load_artifacts(path), device)
    stream = model._dynamic.stream
    model.execute(ins, [ref for ref, _ in outs.values()])
    assert stream.submits == (_halvings(ins["x"]) + 1) + 2 + len(ins["x"]) + 1


def test_loop_memory_does_not_grow_with_iterations(device):
    """A finished iteration's values are dropped: 30 outer x up to 30 inner iterations use no
    more buffers than 3 x 3 (nested counter loops of loops_v1, fed `steps`)."""
    path, ins, outs = fixture("loops_v1")
    model = GraphModel(load_artifacts(path), device)
    nested = outs["nested"][0]
    model.execute({**ins, "steps": np.array(3, np.int32)}, [nested])
    created = model._dynamic.stream.created
    got = model.execute({**ins, "steps": np.array(30, np.int32)}, nested)
    want = np.float32(0)
    for i in range(30):
        for j in range(i + 1):
            want = np.float32(want + np.float32(i * j) * ins["x"][0, 0])
    assert_close(got, want, FLOAT_TOL, "nested loops, 30 outer iterations")
    assert model._dynamic.stream.created - created <= 2, "buffers created for 30x more iterations"


# ----------------------------------------------------------- ops without registry cases
def _graph(device, nodes, weights):
    """A GraphModel from hand-written nodes: (name, op, inputs, attrs) tuples."""
    from pathlib import Path

    from wgpu_runtime.format.artifacts import ModelArtifacts
    from wgpu_runtime.format.nodes import NodeDef

    defs = [NodeDef(n, op, list(ins), dict(attrs)) for n, op, ins, attrs in nodes]
    for name, value in weights.items():
        defs.insert(0, NodeDef(name, "Const", [], {"dtype": "int32" if value.dtype.kind in "iu" else "float32"}))
    art = ModelArtifacts(path=Path("<test>"), format="graph-model", generated_by=None, converted_by=None,
                         model_topology={}, nodes=defs, functions=[], signature=None, weights=weights,
                         weight_specs=[], user_defined_metadata=None, model_initializer=None,
                         initializer_signature=None)
    return GraphModel(art, device)


def _i(*v):
    return np.array(v if len(v) != 1 else v[0], np.int32)


def test_tensor_list_ops_match_tensorflow(device):
    """Split/ConcatV2, ScatterV2/Stack/Gather/GetItem (an element never set reads as zeros),
    EmptyTensorList/PushBack/PopBack/Length/Resize, against the same raw ops run by TF."""
    tf = pytest.importorskip("tensorflow")
    x = np.arange(18, dtype=np.float32).reshape(6, 3) - 4
    F32 = {"element_dtype": "float32"}
    nodes = [("x", "Placeholder", [], {"dtype": "float32", "shape": (6, 3)}),
             ("split", "TensorListSplit", ["x", "es_any", "lengths"], F32),
             ("cat", "TensorListConcatV2", ["split", "es_any", "lead"], F32),
             ("sc", "TensorListScatterV2", ["x", "idx", "es3", "n7"], F32),
             ("st", "TensorListStack", ["sc", "es3"], {**F32, "num_elements": -1}),
             ("ga", "TensorListGather", ["sc", "pick", "es3"], F32),
             ("gi", "TensorListGetItem", ["sc", "six", "es3"], F32),
             ("em", "EmptyTensorList", ["es3", "minus1"], F32),
             ("r0", "GatherV2", ["x", "zero", "zero"], {}), ("r1", "GatherV2", ["x", "one", "zero"], {}),
             ("p1", "TensorListPushBack", ["em", "r0"], F32), ("p2", "TensorListPushBack", ["p1", "r1"], F32),
             ("p3", "TensorListPushBack", ["p2", "r0"], F32),
             ("pop", "TensorListPopBack", ["p3", "es3"], F32),
             ("ln", "TensorListLength", ["pop"], {}),
             ("rs", "TensorListResize", ["pop", "four"], {}),
             ("st2", "TensorListStack", ["rs", "es3"], {**F32, "num_elements": -1})]
    weights = {"es_any": _i(-1, 3), "lengths": _i(1, 2, 3), "lead": np.zeros(0, np.int32), "es3": _i([3]),
               "idx": _i(4, 0, 2, 5, 1, 3), "n7": _i(7), "pick": _i(5, 0), "six": _i(6), "minus1": _i(-1),
               "zero": _i(0), "one": _i(1), "four": _i(4)}
    model = _graph(device, nodes, weights)
    got = model.execute({"x": x}, ["cat:0", "cat:1", "st", "ga", "gi", "pop:1", "ln", "st2"])
    r = tf.raw_ops
    es3 = tf.constant([3])
    split = r.TensorListSplit(tensor=x, element_shape=tf.constant([-1, 3]), lengths=tf.constant([1, 2, 3], tf.int64))
    cat = r.TensorListConcatV2(input_handle=split, element_shape=tf.constant([-1, 3]),
                               leading_dims=tf.zeros([0], tf.int64), element_dtype=tf.float32)
    sc = r.TensorListScatterV2(tensor=x, indices=[4, 0, 2, 5, 1, 3], element_shape=es3, num_elements=7)
    em = r.EmptyTensorList(element_shape=es3, max_num_elements=-1, element_dtype=tf.float32)
    p3 = em
    for row in (x[0], x[1], x[0]):
        p3 = r.TensorListPushBack(input_handle=p3, tensor=row)
    pop = r.TensorListPopBack(input_handle=p3, element_shape=es3, element_dtype=tf.float32)
    want = [cat.tensor, cat.lengths,
            r.TensorListStack(input_handle=sc, element_shape=es3, element_dtype=tf.float32),
            r.TensorListGather(input_handle=sc, indices=[5, 0], element_shape=es3, element_dtype=tf.float32),
            r.TensorListGetItem(input_handle=sc, index=6, element_shape=es3, element_dtype=tf.float32),
            pop.tensor, r.TensorListLength(input_handle=pop.output_handle),
            r.TensorListStack(input_handle=r.TensorListResize(input_handle=pop.output_handle, size=4),
                              element_shape=es3, element_dtype=tf.float32)]
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, w.numpy(), err_msg=f"output {k}")


@pytest.mark.parametrize("pick, bad", [((0, 3), 3), ((1, -1), -1)])
def test_tensor_list_gather_out_of_range_is_a_clear_error(device, pick, bad):
    """TF refuses a gather index past a list's end, or a negative one: so do we, naming the
    index, and the model keeps working."""
    F32 = {"element_dtype": "float32"}
    nodes = [("x", "Placeholder", [], {"dtype": "float32", "shape": (-1, 3)}),
             ("l", "TensorListFromTensor", ["x", "es3"], F32),
             ("ga", "TensorListGather", ["l", "pick", "es3"], F32)]
    model = _graph(device, nodes, {"es3": _i([3]), "pick": np.array(pick, np.int32)})
    with pytest.raises(GraphError, match=rf"index {bad} is out of range for a list of 2 elements"):
        model.execute({"x": np.zeros((2, 3), np.float32)}, ["ga"])
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    if bad >= 0:
        np.testing.assert_array_equal(model.execute({"x": x}, ["ga"])[0], x[list(pick)])


def test_complex_and_fft_ops_match_tensorflow(device):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(3)
    re_, im_ = (rng.normal(0, 1, (2, 8)).astype(np.float32) for _ in range(2))
    nodes = [("re", "Placeholder", [], {"dtype": "float32", "shape": (2, 8)}),
             ("im", "Placeholder", [], {"dtype": "float32", "shape": (2, 8)}),
             ("z", "Complex", ["re", "im"], {}), ("f", "FFT", ["z"], {}), ("b", "IFFT", ["f"], {}),
             ("abs", "ComplexAbs", ["f"], {}), ("real", "Real", ["b"], {}), ("imag", "Imag", ["f"], {}),
             ("rf", "RFFT", ["re", "n8"], {}), ("back", "IRFFT", ["rf", "n8"], {})]
    model = _graph(device, nodes, {"n8": _i([8])})
    got = model.execute({"re": re_, "im": im_}, ["abs", "real", "imag", "back"])
    f = tf.signal.fft(tf.complex(re_, im_))
    want = [tf.abs(f), tf.math.real(tf.signal.ifft(f)), tf.math.imag(f),
            tf.signal.irfft(tf.signal.rfft(re_, [8]), [8])]
    tol = Tolerance(16.0, "an 8-point FFT: float64 (numpy) vs float32 (TF) sums of 8 terms")
    for k, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w.numpy(), tol, f"output {k}", per="tensor")


def test_ragged_gather_matches_tensorflow(device):
    tf = pytest.importorskip("tensorflow")
    splits, values = np.array([0, 2, 2, 5, 6], np.int64), np.arange(6, dtype=np.float32) * 1.5
    for indices in (np.array([3, 0, 2, 2], np.int32), np.array([[2, 0], [1, 3]], np.int32)):
        nodes = [("idx", "Placeholder", [], {"dtype": "int32", "shape": indices.shape}),
                 ("g", "RaggedGather", ["splits", "values", "idx"],
                  {"PARAMS_RAGGED_RANK": 1, "OUTPUT_RAGGED_RANK": indices.ndim})]
        model = _graph(device, nodes, {"splits": splits.astype(np.int32), "values": values})
        got = model.execute({"idx": indices}, [f"g:{k}" for k in range(indices.ndim + 1)])
        out = tf.raw_ops.RaggedGather(params_nested_splits=[splits], params_dense_values=values,
                                      indices=indices, OUTPUT_RAGGED_RANK=indices.ndim)
        want = [s.numpy() for s in out.output_nested_splits] + [out.output_dense_values.numpy()]
        for k, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_array_equal(g, w, err_msg=f"indices {indices.shape}, output {k}")


def test_random_ops_sample_each_run(device):
    """Random ops run on the host with numpy's generator (TF's values cannot be matched):
    shapes, ranges and the first two moments over 20000 samples (|error| < 5 standard errors),
    and a new sample on every run even though their inputs are constants."""
    shape = _i(100, 200)
    nodes = [("u", "RandomUniform", ["shape"], {"dtype": "float32"}),
             ("n", "RandomStandardNormal", ["shape"], {"dtype": "float32", "seed": 1, "seed2": 2}),
             ("t", "TruncatedNormal", ["shape"], {"dtype": "float32"}),
             ("i", "RandomUniformInt", ["shape", "lo", "hi"], {}),
             ("m", "Multinomial", ["logits", "k"], {})]
    model = _graph(device, nodes, {"shape": shape, "lo": _i(-3), "hi": _i(4), "k": _i(500),
                                   "logits": np.log(np.array([[0.2, 0.8], [0.5, 0.5]], np.float32))})
    u, n, t, i, m = model.execute({}, ["u", "n", "t", "i", "m"])
    se = 5 / np.sqrt(20000)
    assert u.shape == (100, 200) and u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.29 * se
    assert abs(n.mean()) < se and abs(n.std() - 1) < se
    assert np.abs(t).max() <= 2 and abs(t.mean()) < se
    assert i.dtype == np.int32 and i.min() == -3 and i.max() == 3
    assert m.shape == (2, 500) and abs(m[0].mean() - 0.8) < 5 * np.sqrt(0.16 / 500)
    u2 = model.execute({}, "u")
    assert not np.array_equal(u, u2), "a random op must sample again on every run"


@pytest.mark.parametrize("shape", [(70, 9), (3, 1000), (5,)])
def test_where_on_gpu_reads_back_only_the_count(device, shape):
    """Where of a GPU tensor compacts on the GPU: the only read-back before the output is its
    4-byte count; a GPU op consuming the result needs no upload."""
    x = np.random.default_rng(7).normal(0, 1, shape).astype(np.float32)
    x[..., 0] = -0.0                                               # -0.0 is zero
    nodes = [("x", "Placeholder", [], {"dtype": "float32", "shape": shape}),
             ("gt", "Greater", ["x", "t"], {}), ("w", "Where", ["gt"], {}),
             ("sel", "GatherNd", ["x", "w"], {}), ("n", "Size", ["sel"], {})]
    model = _graph(device, nodes, {"t": np.array(0.3, np.float32)})
    w, sel, n = model.execute({"x": x}, ["w", "sel", "n"])
    want = np.argwhere(x > 0.3)
    np.testing.assert_array_equal(w, want)
    np.testing.assert_array_equal(sel, x[x > 0.3])
    assert int(n) == len(want)
    stream = model._dynamic.stream
    assert stream.readback_bytes == 4 + max(4, w.nbytes) + max(4, sel.nbytes), "count, then the outputs"
