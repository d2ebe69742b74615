"""Load-time rewrites keep outputs unchanged (oracle: the registry's numpy references run on the
original, unrewritten graph) and do what they claim (fewer dispatches)."""
import numpy as np
import pytest

from wgpu_runtime.format.nodes import NodeDef
from wgpu_runtime.graph.optimize import fold_pad_into_conv
from wgpu_runtime.graph.optimize.common import Work
from wgpu_runtime.ops import REGISTRY

from test_errors import _model  # noqa: E402  (tiny model.json writer)


def _graph(conv_op, padding_rows, extra_consumer=False):
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
        {"name": "paddings", "op": "Const", "attr": {"dtype": {"type": "DT_INT32"}}},
        {"name": "pad", "op": "Pad", "input": ["x", "paddings"], "attr": {}},
        {"name": "w", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
        {"name": "conv", "op": conv_op, "input": ["pad", "w"],
         "attr": {"strides": {"list": {"i": ["1", "2", "2", "1"]}}, "padding": {"s": "VkFMSUQ="}}},
    ]
    if extra_consumer:
        nodes.append({"name": "relu", "op": "Relu", "input": ["pad"], "attr": {}})
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 3, 4, 5 if conv_op == "Conv2D" else 1)).astype(np.float32)
    return nodes, [("paddings", np.array(padding_rows, np.int32)), ("w", w)]


@pytest.mark.parametrize("conv_op", ["Conv2D", "DepthwiseConv2dNative"])
def test_pad_folds_into_valid_conv(tmp_path, device, conv_op):
    import wgpu_runtime as wr

    nodes, weights = _graph(conv_op, [[0, 0], [0, 1], [1, 2], [0, 0]])
    model = wr.load_graph_model(_model(tmp_path, nodes, weights), adapter=device.backend)
    x = np.random.default_rng(1).standard_normal((2, 9, 8, 4)).astype(np.float32)
    plan, arrays = model.prepare({"x": x}, ["conv:0"])
    assert [s.op for s in plan.steps].count("Pad") == 0
    w = dict(weights)
    padded = REGISTRY["Pad"].run_reference({}, [x, w["paddings"]])[0]
    conv_attrs = {"strides": [1, 2, 2, 1], "padding": "VALID"}
    want = REGISTRY[conv_op].run_reference(conv_attrs, [padded, w["w"]])[0]
    got = model.execute({"x": x}, "conv:0")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # 36-term float32 dot products


def test_pad_with_another_consumer_or_batch_padding_is_kept():
    for rows, extra in (([[0, 0], [1, 1], [1, 1], [0, 0]], True), ([[1, 0], [1, 1], [1, 1], [0, 0]], False)):
        raw, weights = _graph("Conv2D", rows, extra_consumer=extra)
        nodes = [NodeDef(n["name"], n["op"], n.get("input", []), {"padding": "VALID"} if n["op"] == "Conv2D" else {})
                 for n in raw]
        work = Work(nodes, dict(weights), frozenset(), {n.name for n in nodes})
        fold_pad_into_conv(work)
        conv = work.nodes["conv"]
        assert conv.inputs[0] == "pad" and conv.attrs["padding"] == "VALID"
