"""Bad models and bad inputs get clear errors that name the problem (runtime level)."""
import json
import os

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


# ------------------------------------------------------------- issue 13: what the fuzzer found
def _seed_graph(tmp_path, signature=True):
    from tests.fuzz import seeds

    return seeds.graph_model(tmp_path / "g", signature=signature)


def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))
    return path


def test_pad_fold_leaves_no_extra_outputs_without_a_signature(tmp_path):
    """The load-time Pad fold leaves the Pad node unconsumed: outputs come from the file's graph."""
    from tests.fuzz import seeds

    model = wr.load_graph_model(_seed_graph(tmp_path, signature=False))
    assert [s.name for s in model.outputs] == ["Identity:0"]
    assert np.asarray(model.predict(seeds.graph_input())).shape == (1, 3)


@pytest.mark.parametrize("name", ["x", "x:0"])
def test_inputs_by_node_or_tensor_name_and_no_misleading_list(tmp_path, name):
    from tests.fuzz import seeds

    model = wr.load_graph_model(_seed_graph(tmp_path))
    assert np.asarray(model.execute({name: seeds.graph_input()}, "Identity:0")).shape == (1, 3)
    with pytest.raises(wr.errors.InputError) as e:
        model.execute({"x:1": seeds.graph_input()})
    listed = str(e.value).split("are: ")[1].split(", ")
    assert "x:1" not in listed and set(listed) <= {"x", "x:0"}


def test_signature_naming_no_placeholder_is_a_clear_error(tmp_path):
    from tests.fuzz import seeds

    path = _edit(_seed_graph(tmp_path), lambda d: d["signature"]["inputs"]["x"].update(name="conv:0"))
    model = wr.load_graph_model(path)
    with pytest.raises(wr.errors.InputError, match="the model's input 'conv:0' names no Placeholder of the graph"):
        model.predict(seeds.graph_input())
    with pytest.raises(wr.errors.InputError, match="unknown input 'y'; the model's inputs are: \\(none"):
        model.execute({"y": seeds.graph_input()})


@pytest.mark.parametrize("tensor,match", [
    ("Identdty:0", "the model's output 'y' is tensor 'Identdty:0', which no node of the graph produces"),
    (None, "the model's output 'y' names no tensor"),
])
def test_signature_output_naming_no_node_is_a_clear_error(tmp_path, tensor, match):
    """Found by the fuzzer (seed 2): a signature output whose tensor is missing or names no node
    was reported as 'unknown output' while listing that very name as known."""
    from tests.fuzz import seeds

    def edit(doc):
        out = doc["signature"]["outputs"]["y"]
        if tensor is None:
            del out["name"]
        else:
            out["name"] = tensor
    model = wr.load_graph_model(_edit(_seed_graph(tmp_path), edit))
    with pytest.raises(wr.errors.ModelFormatError, match=match):
        model.predict(seeds.graph_input())
    with pytest.raises(wr.errors.InputError, match="unknown output 'z'; the model's outputs are: \\(none"):
        model.execute({"x": seeds.graph_input()}, "z")


@pytest.mark.parametrize("edit,match", [
    (lambda d: _node_of(d, "conv")["input"].append("^softmax"), "cycle"),
    (lambda d: _node_of(d, "relu").update(input=["dense"]), "cycle"),
    (lambda d: _node_of(d, "relu")["input"].append("x"), "'relu' \\(Relu\\) has 2 data inputs; Relu takes at most 1"),
    (lambda d: _node_of(d, "relu")["attr"].update(T={"type": "DT_BOGUS"}), "unknown TensorFlow dtype 'DT_BOGUS'"),
])
def test_graph_structure_errors(tmp_path, edit, match):
    with pytest.raises(wr.errors.ModelFormatError, match=match):
        wr.load_graph_model(_edit(_seed_graph(tmp_path), edit))


def _node_of(doc, name):
    return next(n for n in doc["modelTopology"]["node"] if n["name"] == name)


def test_v1_loop_back_edges_are_not_cycles():
    from wgpu_runtime.format import NodeDef
    from wgpu_runtime.graph.graph import Graph

    nodes = [NodeDef("enter", "Enter", ["x"]), NodeDef("x", "Placeholder", []),
             NodeDef("merge", "Merge", ["enter", "next"]), NodeDef("next", "NextIteration", ["merge"])]
    Graph(nodes)


def _layers_seed(tmp_path):
    from tests.fuzz import seeds

    return seeds.layers_model(tmp_path / "l")


def _layers(doc):
    return doc["modelTopology"]["model_config"]["config"]["layers"]


@pytest.mark.parametrize("edit,match", [
    (lambda d: _layers(d)[1]["config"].update(units=8.5), "units must be an integer >= 1, got 8.5"),
    (lambda d: _layers(d)[1]["config"].update(units=4 * 10 ** 9), "'d1' \\(Dense\\): weight 'kernel' of shape \\[6, 4000000000\\] would take 96000000000 bytes"),
    (lambda d: _layers(d)[0]["config"].update(batch_input_shape=[None, 10 ** 9]), "takes over 2147483648 bytes per example"),
    (lambda d: _layers(d).__setitem__(1, "Dense"), "malformed layers model config|class_name"),
    (lambda d: _layers(d)[1].update(class_name={"a": 1}), "class_name"),
])
def test_layers_config_errors_before_allocation(tmp_path, edit, match):
    with pytest.raises(wr.errors.ModelFormatError, match=match):
        wr.load_layers_model(_edit(_layers_seed(tmp_path), edit), adapter="vulkan")


@pytest.mark.parametrize("x,kwargs,match", [
    (np.zeros((2, 6), np.float32), {"batch_size": -1}, "batch_size must be a positive integer"),
    (np.zeros((2, 6), np.float32), {"batch_size": 0}, "batch_size must be a positive integer"),
    (np.array([["a"] * 6]), {}, "must hold numbers"),
])
def test_layers_predict_call_errors(tmp_path, x, kwargs, match):
    model = wr.load_layers_model(_layers_seed(tmp_path), adapter="vulkan")
    with pytest.raises(wr.errors.InputError, match=match):
        model.predict(x, verbose=0, **kwargs)


def test_tfdf_assets_outside_the_model_folder_are_neither_listed_nor_read(tmp_path):
    """A TF-DF model's assets/ (or a file in it) that is a symlink leading outside: refused
    before anything outside is opened (an audit hook records every open and listing)."""
    import sys

    from wgpu_runtime.ops.tfdf import _model_files

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "abcdone.bin").write_bytes(b"secret")
    model = tmp_path / "model"
    model.mkdir()
    (model / "assets").symlink_to(outside)
    seen, active = [], [True]
    real_outside = os.path.realpath(outside)

    def hook(event, args):           # audit hooks cannot be removed: this one goes idle after the test
        if active[0] and event in ("open", "os.listdir", "os.scandir") and args \
                and isinstance(args[0], (str, bytes)) and os.path.realpath(os.fsdecode(args[0])).startswith(real_outside):
            seen.append((event, args[0]))
    sys.addaudithook(hook)
    try:
        with pytest.raises(wr.errors.ModelFormatError, match="leads outside the model folder"):
            _model_files(model, "abcd", tmp_path)
        (model / "assets").unlink()
        (model / "assets").mkdir()
        (model / "assets" / "abcdone.bin").symlink_to(outside / "abcdone.bin")
        with pytest.raises(wr.errors.ModelFormatError, match="leads outside the model folder"):
            _model_files(model, "abcd", tmp_path)
    finally:
        active[0] = False
    assert not seen, seen


@pytest.mark.parametrize("argv,status,match", [
    (["run", "{m}", "--input", "x={x}", "--output", "{tmp}/missing/y.npz"], 2, "does not exist"),
    (["run", "{m}", "--input", "x={x}", "--output", "{tmp}"], 2, "is a folder"),
    (["run", "{m}", "--input", "x={x}", "--output", "/proc/y.npz"], 2, "cannot write"),
    (["bench", "{m}", "--runs", "0"], 2, "must be at least 1"),
])
def test_cli_output_and_option_errors_are_one_line(tmp_path, capsys, argv, status, match):
    from tests.fuzz import seeds
    from wgpu_runtime.__main__ import main

    m = _seed_graph(tmp_path)
    x = tmp_path / "x.npy"
    np.save(x, seeds.graph_input())
    argv = [a.format(m=m.parent, x=x, tmp=tmp_path) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == status and "Traceback" not in "\n".join(err)
    assert match in err[-1], err
