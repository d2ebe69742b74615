"""Data-moving ops beyond the registry cases (tests/test_ops.py runs those): views and shape
arithmetic cost no dispatch, aliasing fast paths, out-of-range gathers, NoOp, large launches, and
shape-free pipeline keys."""
from pathlib import Path

import numpy as np
import pytest

from wgpu_runtime.format.artifacts import ModelArtifacts
from wgpu_runtime.format.nodes import NodeDef
from wgpu_runtime.graph.model import GraphModel
from wgpu_runtime.graph.plan import Planner
from wgpu_runtime.graph.single_op import op_model, run_op
from wgpu_runtime.ops import REGISTRY


def _graph(device, nodes, weights=None) -> GraphModel:
    weights = {k: np.asarray(v) for k, v in (weights or {}).items()}
    nodes = [NodeDef(k, "Const", [], {"dtype": str(v.dtype)}) for k, v in weights.items()] + nodes
    art = ModelArtifacts(path=Path("<test>"), format="graph-model", generated_by=None, converted_by=None,
                         model_topology={}, nodes=nodes, functions=[], signature=None, weights=weights,
                         weight_specs=[], user_defined_metadata=None, model_initializer=None,
                         initializer_signature=None)
    return GraphModel(art, device)


def _steps(model, feeds: dict, target: str) -> list:
    shapes = {k: (v.shape, str(v.dtype)) for k, v in feeds.items()}
    return Planner(model, model.device).build(model.graph, shapes, [(target, 0)]).steps


def _x(shape):
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def _placeholder(shape):
    return NodeDef("x", "Placeholder", [], {"dtype": "float32", "shape": shape})


def test_views_dispatch_nothing(device):
    x = _x((2, 1, 3, 1))
    model = _graph(device, [
        _placeholder(x.shape),
        NodeDef("r", "Reshape", ["x", "shape"], {}),
        NodeDef("s", "Squeeze", ["r"], {"squeeze_dims": [1]}),
        NodeDef("e", "ExpandDims", ["s", "dim"], {}),
        NodeDef("i", "Identity", ["e"], {}),
        NodeDef("out", "StopGradient", ["i"], {}),
    ], {"shape": np.array([6, 1], np.int32), "dim": np.array(0, np.int32)})
    assert _steps(model, {"x": x}, "out") == []
    np.testing.assert_array_equal(model.execute({"x": x}, "out:0"), x.reshape(1, 6))


def _flatten(src: str, shape_of: str) -> list:
    """Keras' Flatten as converted graphs hold it: Reshape(src, Pack(StridedSlice(Shape(shape_of))[0], -1))."""
    return [NodeDef("shape", "Shape", [shape_of], {"out_type": "int32"}),
            NodeDef("batch", "StridedSlice", ["shape", "b", "e", "s"], {"shrink_axis_mask": 1}),
            NodeDef("dims", "Pack", ["batch", "minus1"], {"axis": 0}),
            NodeDef("flat", "Reshape", [src, "dims"], {})]


_FLATTEN_CONSTS = {"b": np.array([0], np.int32), "e": np.array([1], np.int32), "s": np.array([1], np.int32),
                   "minus1": np.array(-1, np.int32), "perm": np.array([0, 2, 3, 1], np.int32)}


def test_shape_arithmetic_folds_on_host(device):
    x = _x((2, 3, 4, 5))
    model = _graph(device, [_placeholder(x.shape), *_flatten("x", "x")], _FLATTEN_CONSTS)
    assert _steps(model, {"x": x}, "flat") == []
    np.testing.assert_array_equal(model.execute({"x": x}, "flat:0"), x.reshape(2, 60))
    np.testing.assert_array_equal(model.execute({"x": x}, "dims:0"), [2, -1])


def test_shape_of_a_computed_tensor_is_a_host_value(device):
    x = _x((2, 3, 4, 5))
    model = _graph(device, [_placeholder(x.shape), NodeDef("t", "Transpose", ["x", "perm"], {}),
                            *_flatten("t", "t")], _FLATTEN_CONSTS)
    assert [s.node for s in _steps(model, {"x": x}, "flat")] == ["t"]      # only the real data move
    np.testing.assert_array_equal(model.execute({"x": x}, "flat:0"), x.transpose(0, 2, 3, 1).reshape(2, 60))


def test_noop_orders_nothing_on_the_gpu(device):
    x = _x((3,))
    model = _graph(device, [_placeholder(x.shape), NodeDef("init", "NoOp", [], {}),
                            NodeDef("out", "Identity", ["x", "^init"], {})])
    assert _steps(model, {"x": x}, "out") == []
    np.testing.assert_array_equal(model.execute({"x": x}, "out:0"), x)


@pytest.mark.parametrize("op,attrs,extra,steps", [
    ("Transpose", {}, [np.array([0, 1, 2], np.int32)], 0),
    ("Transpose", {}, [np.array([1, 0, 2], np.int32)], 1),
    ("Pad", {}, [np.zeros((3, 2), np.int32)], 0),
    ("Tile", {}, [np.array([1, 1, 1], np.int32)], 0),
    ("Slice", {}, [np.array([0, 0, 0], np.int32), np.array([-1, -1, -1], np.int32)], 0),
    ("Slice", {}, [np.array([1, 0, 0], np.int32), np.array([1, -1, -1], np.int32)], 1),
    ("StridedSlice", {"begin_mask": 1}, [np.array([0], np.int32), np.array([4], np.int32), np.array([1], np.int32)], 0),
])
def test_no_op_copies_are_aliases(device, op, attrs, extra, steps):
    x = _x((2, 3, 4))
    model = op_model(op, attrs, [x, *extra], device)
    assert len(_steps(model, {"in0": x}, "op")) == steps


def test_concat_is_one_dispatch_per_input(device):
    xs = [_x((2, k, 3)) for k in (1, 4, 2)]
    model = op_model("ConcatV2", {}, [*xs, np.array(1, np.int32)], device)
    assert len(_steps(model, {f"in{i}": x for i, x in enumerate(xs)}, "op")) == 3


def test_out_of_range_gather_indices_give_zeros(device):
    params = _x((4, 3)) + 1
    got = run_op("GatherV2", {}, [params, np.array([0, 7, -1, 3], np.int32), np.array(0, np.int32)], device)[0]
    np.testing.assert_array_equal(got, [params[0], [0, 0, 0], [0, 0, 0], params[3]])
    got = run_op("GatherNd", {}, [params, np.array([[1, 2], [4, 0], [0, -1], [3, 0]], np.int32)], device)[0]
    np.testing.assert_array_equal(got, [params[1, 2], 0, 0, params[3, 0]])


def test_copy_past_65535_workgroups(device):
    """4.5M elements: more than 65535 workgroups of 64, folded into a 2-D grid."""
    x = np.array([[1.5], [-2.0], [3.0]], np.float32)
    got = run_op("Tile", {}, [x, np.array([1, 1_500_000], np.int32)], device)[0]
    assert got.shape == (3, 1_500_000)
    np.testing.assert_array_equal(got[:, [0, 777_777, -1]], np.repeat(x, 3, axis=1))


def test_pipelines_do_not_depend_on_shapes(device):
    def transpose(shape):
        run_op("Transpose", {}, [_x(shape), np.array([2, 0, 1], np.int32)], device)

    transpose((2, 3, 4))
    compiled = device.pipelines.compiled
    transpose((5, 7, 9))
    run_op("Slice", {}, [_x((5, 6)), np.array([1, 2], np.int32), np.array([3, 2], np.int32)], device)
    run_op("ConcatV2", {}, [_x((2, 2)), _x((2, 3)), np.array(1, np.int32)], device)
    assert device.pipelines.compiled == compiled


def test_hardware_gpu_variant(device, monkeypatch):
    """Hardware GPUs run copy/gather/resize with shorter runs than CPU adapters (strided_copy.run_length):
    run every case of the families that move data (ops/transform.py, ops/image.py) through that variant too."""
    monkeypatch.setattr(type(device), "is_software", property(lambda self: False))
    for name, op in sorted(REGISTRY.items()):
        if op.family not in ("transform", "image"):
            continue
        for idx, case in enumerate(op.cases):
            inputs = case.materialize(seed=idx)
            want = op.run_reference(case.attrs, inputs)
            got = run_op(name, case.attrs, inputs, device, n_outputs=len(want))
            for g, w in zip(got, want):
                atol = (case.tol or op.tol)[0] * max(1, np.abs(w).max(initial=0))
                np.testing.assert_allclose(g, w, rtol=0, atol=atol, err_msg=f"{name} case {idx} ({case.note})")


def _block(block, amounts):
    return [np.array(block, np.int32), np.array(amounts, np.int32).reshape(-1, 2)]


@pytest.mark.parametrize("op,shape,block,amounts,steps", [
    ("SpaceToBatchND", (1, 6, 6, 3), [2, 2], [[2, 2], [2, 2]], 1),    # whole blocks: one PAD copy
    ("SpaceToBatchND", (1, 5, 6, 3), [2, 2], [[2, 1], [2, 2]], 2),    # partial blocks: pad, then copy
    ("SpaceToBatchND", (2, 4, 3), [1, 1], [[0, 0], [0, 0]], 0),
    ("BatchToSpaceND", (4, 3, 3, 2), [2, 2], [[0, 2], [2, 0]], 1),    # whole-block crops
    ("BatchToSpaceND", (4, 3, 3, 2), [2, 2], [[0, 1], [0, 0]], 2),    # copy, then crop
    ("BatchToSpaceND", (2, 4, 3), [1, 1], [[0, 0], [0, 0]], 0),
])
def test_space_batch_dispatches(device, op, shape, block, amounts, steps):
    x = _x(shape)
    model = op_model(op, {}, [x, *_block(block, amounts)], device)
    assert len(_steps(model, {"in0": x}, "op")) == steps


@pytest.mark.parametrize("shape,rate,padding", [((1, 8, 8, 3), 2, "SAME"), ((2, 9, 10, 3), 2, "SAME"),
                                                 ((1, 11, 7, 2), 3, "VALID"), ((1, 12, 12, 4), 4, "SAME")])
def test_dilated_conv_through_space_to_batch(device, shape, rate, padding):
    """A dilated convolution as TF on CPU (and so converted tf_keras models) expresses it:
    SpaceToBatchND -> Conv2D -> BatchToSpaceND, against TF's dilated Conv2D."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((3, 3, shape[-1], 5)).astype(np.float32)
    want = tf.nn.conv2d(x, w, strides=1, padding=padding, dilations=rate).numpy()
    total = 2 * rate if padding == "SAME" else 0       # a 3x3 kernel dilated by rate spans 2 * rate + 1
    pads, crops = (v.numpy() for v in tf.required_space_to_batch_paddings(
        shape[1:3], [rate, rate], base_paddings=[[total // 2, total - total // 2]] * 2))
    model = _graph(device, [
        _placeholder(shape),
        NodeDef("s2b", "SpaceToBatchND", ["x", "block", "pads"], {}),
        NodeDef("conv", "Conv2D", ["s2b", "w"], {"strides": [1, 1, 1, 1], "padding": "VALID"}),
        NodeDef("out", "BatchToSpaceND", ["conv", "block", "crops"], {}),
    ], {"block": np.array([rate, rate], np.int32), "pads": pads, "crops": crops, "w": w})
    got = model.execute({"x": x}, "out:0")
    # float32 sums of up to 36 products of N(0, 1) values, accumulated in another order than TF's
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
