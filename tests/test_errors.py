"""Bad models and bad inputs get clear errors that name the problem (runtime level)."""
import json

import numpy as np
import pytest

import wgpu_runtime as wr
from wgpu_runtime.format import write_artifacts


def _node(name, op, inputs=(), **attrs):
    return {"name": name, "op": op, "input": list(inputs), "attr": attrs}


def _model(tmp_path, nodes, weights=(), signature=None):
    topo = {"format": "graph-model", "modelTopology": {"node": nodes, "versions": {"producer": 1}}}
    if signature:
        topo["signature"] = signature
    return write_artifacts(tmp_path / "m", topo, [list(weights)] if weights else [])


def _relu_model(tmp_path):
    nodes = [_node("x", "Placeholder", dtype={"type": "DT_FLOAT"},
                   shape={"shape": {"dim": [{"size": "-1"}, {"size": "3"}]}}),
             _node("w", "Const", dtype={"type": "DT_FLOAT"}),
             _node("y", "Mul", ["x", "w"], T={"type": "DT_FLOAT"}),
             _node("out", "Relu", ["y"], T={"type": "DT_FLOAT"})]
    return _model(tmp_path, nodes, [("w", np.array([1.0, -2.0, 3.0], np.float32))])


def test_model_without_signature_runs_and_picks_outputs_like_tfjs(tmp_path):
    m = wr.load_graph_model(_relu_model(tmp_path), adapter="vulkan")
    assert [s.name for s in m.inputs] == ["x"]
    assert [s.name for s in m.outputs] == ["out:0"]        # the node nobody consumes
    x = np.array([[1, 1, 1], [-1, -1, -1]], np.float32)
    np.testing.assert_array_equal(m.predict(x), np.maximum(x * [1, -2, 3], 0))
    # an unknown batch dim is resolved at run time; float64 arrays are accepted for float32 inputs
    np.testing.assert_array_equal(m.predict(np.ones((5, 3))), np.tile([1, 0, 3], (5, 1)))


def test_unsupported_ops_named_at_load(tmp_path):
    nodes = [_node("x", "Placeholder", dtype={"type": "DT_FLOAT"}),
             _node("s1", "Svd", ["x"]), _node("s2", "Svd", ["x"]), _node("q", "Qr", ["x"])]
    with pytest.raises(wr.UnsupportedOpError) as e:
        wr.load_graph_model(_model(tmp_path, nodes), adapter="vulkan")
    msg = str(e.value)
    assert "Svd" in msg and "Qr" in msg and "s1" in msg and "s2" in msg and "q" in msg
    assert e.value.missing == {"Qr": ["q"], "Svd": ["s1", "s2"]}


@pytest.mark.parametrize("feeds,match", [
    ({"nope": np.zeros((1, 3), np.float32)}, "unknown input 'nope'"),
    ({"x": np.zeros((1, 4), np.float32)}, r"must have shape \[\?, 3\], got \(1, 4\)"),
    ({"x": np.zeros((3,), np.float32)}, r"must have shape \[\?, 3\], got \(3,\)"),
    ({"x": np.zeros((1, 3), np.int32)}, "must be float32, got an array of int32"),
    ({"x": np.zeros((1, 3), bool)}, "must be float32, got an array of bool"),
    ({}, "missing input 'x'"),
])
def test_bad_inputs(tmp_path, feeds, match):
    m = wr.load_graph_model(_relu_model(tmp_path), adapter="vulkan")
    with pytest.raises(wr.InputError, match=match):
        m.execute(feeds)


def test_unknown_output_name(tmp_path):
    m = wr.load_graph_model(_relu_model(tmp_path), adapter="vulkan")
    with pytest.raises(wr.InputError, match="unknown output 'nope:0'"):
        m.execute({"x": np.zeros((1, 3), np.float32)}, ["nope:0"])


def test_broken_files_are_model_format_errors(tmp_path):
    path = _relu_model(tmp_path)
    shard = next(path.parent.glob("*.bin"))
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(wr.ModelFormatError, match="truncated|expected"):
        wr.load_graph_model(path)
    shard.unlink()
    with pytest.raises(wr.ModelFormatError, match=shard.name):
        wr.load_graph_model(path)
    path.write_text(path.read_text()[:-10])
    with pytest.raises(wr.ModelFormatError, match="line"):
        wr.load_graph_model(path)


def test_weight_path_leaving_the_model_folder_is_refused(tmp_path):
    path = _relu_model(tmp_path)
    model = json.loads(path.read_text())
    model["weightsManifest"][0]["paths"] = ["../../etc/passwd"]
    path.write_text(json.dumps(model))
    with pytest.raises(wr.ModelFormatError, match="outside|leav|escap"):
        wr.load_graph_model(path)


def test_layers_model_is_not_a_graph_model(tmp_path):
    p = tmp_path / "model.json"
    p.write_text(json.dumps({"format": "layers-model", "modelTopology": {"model_config": {}},
                             "weightsManifest": []}))
    with pytest.raises(wr.InputError, match="layers-model"):
        wr.load_graph_model(p)
