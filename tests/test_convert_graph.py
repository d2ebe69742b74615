"""Graph models: every input format -> tfjs_graph_model, checked in REAL TensorFlow.js 4.22
(Node, CPU backend: tests/tfjs_harness.py) and in this runtime (both adapters) against
TensorFlow's outputs; byte-for-byte and op-for-op against the official converter where it
handles the model (same TF version, in-process); each rewrite on its own; the CLI (flags that
used to swallow paths, errors as one line, atomic output).

One TensorFlow process (this one) builds the seeded source models (tests/fixtures/convert_sources.py)
and the references; all TF.js runs go through ONE Node process.

Tolerances:
- FLOAT_TOL (atol 2e-6 + rtol 1e-5): TF.js's CPU kernels, this runtime's WGSL kernels and TF's
  Eigen kernels sum in different orders in float32, and batch norms folded into weights round
  once more; outputs are O(1) and sum at most ~150 products, so differences are a few float32
  ulps of the partial sums (observed <= 3.6e-7; the atol leaves a ~5x margin).
- Quantized models are compared with TensorFlow running the SAME graph with the SAME dequantized
  weights (``tf_run_graph_model``: weights decoded as TF.js decodes them), so FLOAT_TOL applies.
  That the weights are quantized exactly as the official converter does is checked on the bytes.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures.convert_sources import (Source, build_sources, debug_ops_model, dynamic_loop_model, file_digests,
                              file_table_model, keras_lookup_model, load_model_json, lookup_table_model,
                              lookup_tables_model, reference_run, tf_run_graph_model, unsupported_ops)
from tfjs_harness import TfjsError, tfjs_predict_many

from wgpu_runtime.convert.errors import ConversionError
from wgpu_runtime.convert.graph import convert_graph
from wgpu_runtime.convert.options import ConvertOptions

FLOAT_TOL = {"atol": 2e-6, "rtol": 1e-5}

# case -> (source, ConvertOptions fields)
CASES = {
    "tf_keras_cnn": ("tf_keras_cnn", {}),
    "tf_keras_cnn-uint8": ("tf_keras_cnn", {"quantization": {"uint8": True}}),
    "tf_keras_cnn-uint16": ("tf_keras_cnn", {"quantization": {"uint16": True}}),
    "tf_keras_cnn-float16": ("tf_keras_cnn", {"quantization": {"float16": True}}),
    "tf_keras_cnn-shards1000": ("tf_keras_cnn", {"weight_shard_size_bytes": 1000}),
    "tf_keras_layer_norm": ("tf_keras_layer_norm", {}),
    "tf_keras_rnn": ("tf_keras_rnn", {}),
    "keras3_cnn": ("keras3_cnn", {}),
    "keras3_cnn-uint8": ("keras3_cnn", {"quantization": {"uint8": True}}),
    "keras3_keras_file": ("keras3_keras_file", {}),
    "keras3_rnn_h5": ("keras3_rnn_h5", {}),
    "keras3_rnn_saved_model": ("keras3_rnn_saved_model", {}),
    "saved_model": ("saved_model", {}),
    "saved_model-globs": ("saved_model", {"quantization": {"uint8": ["*Conv2D*"], "float16": True}}),
    "saved_model-shards256": ("saved_model", {"weight_shard_size_bytes": 256}),
    "hub_tf2": ("hub_tf2", {}),
    "hub_tf1": ("hub_tf1", {}),
    "frozen_graph": ("frozen_graph", {}),
    "tfjs_layers_model": ("tfjs_layers_model", {}),
}
QUANTIZED = {c for c, (_, o) in CASES.items() if o.get("quantization")}
# The official converter's output differs on purpose for these (docs/converter.md).
DIFFERS_FROM_OFFICIAL = {"tf_keras_layer_norm", "tf_keras_rnn", "keras3_rnn_saved_model"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("convert_graph")


@pytest.fixture(scope="module")
def sources(work) -> dict[str, Source]:
    from wgpu_runtime.convert.layers import convert_layers

    srcs = build_sources(work / "src")
    cnn = srcs["tf_keras_cnn"]
    layers_json = convert_layers(cnn.path, work / "src" / "layers_model", "keras", "tfjs_layers_model", ConvertOptions())
    srcs["tfjs_layers_model"] = Source(Path(layers_json), "tfjs_layers_model", cnn.feeds, cnn.ref)
    return srcs


@pytest.fixture(scope="module")
def converted(sources, work) -> dict[str, Path]:
    before = {name: file_digests(s.path) for name, s in sources.items()}
    out = {}
    for case, (src, opts) in CASES.items():
        s = sources[src]
        out[case] = convert_graph(s.path, work / "out" / case, s.input_format,
                                  ConvertOptions(**{**s.options, **opts})).parent
    after = {name: file_digests(s.path) for name, s in sources.items()}
    assert before == after, "a conversion modified its input"
    return out


@pytest.fixture(scope="module")
def references(converted, sources) -> dict[str, dict]:
    """TensorFlow's outputs per case: the source model's, or for quantized cases TF running
    the converted graph with the dequantized weights."""
    refs = {}
    for case, (src, _) in CASES.items():
        s = sources[src]
        refs[case] = tf_run_graph_model(converted[case], s.feeds) if case in QUANTIZED else s.ref
    return refs


@pytest.fixture(scope="module")
def tfjs(converted, sources) -> dict:
    jobs = [{"model_dir": converted[c], "inputs": sources[src].feeds, "outputs": None} for c, (src, _) in CASES.items()]
    return dict(zip(CASES, tfjs_predict_many(jobs)))


@pytest.mark.parametrize("case", CASES)
def test_tfjs_reproduces_tensorflow(case, tfjs, references, converted):
    result = tfjs[case]
    if isinstance(result, TfjsError):
        pytest.fail(str(result))
    keys = list(load_model_json(converted[case])["signature"]["outputs"])   # TF.js returns them in this order
    assert len(result) == len(keys)
    for key, y in zip(keys, result):
        np.testing.assert_allclose(y, references[case][key], **FLOAT_TOL, err_msg=f"{case}: {key}")


@pytest.mark.parametrize("case", CASES)
def test_runtime_reproduces_tensorflow(case, device, converted, sources, references):
    from wgpu_runtime.format import load_artifacts
    from wgpu_runtime.graph.model import GraphModel

    model = GraphModel(load_artifacts(converted[case]), device)
    keys = sorted(references[case])
    outs = model.execute(sources[CASES[case][0]].feeds, keys)
    for key, y in zip(keys, outs):
        np.testing.assert_allclose(y, references[case][key], **FLOAT_TOL, err_msg=f"{case}: {key}")


def test_quantized_models_are_quantized_as_asked(converted):
    for case, dtypes in (("tf_keras_cnn-uint8", {"uint8"}), ("tf_keras_cnn-uint16", {"uint16"}),
                         ("tf_keras_cnn-float16", {"float16"})):
        specs = [w for g in load_model_json(converted[case])["weightsManifest"] for w in g["weights"]]
        assert {w["quantization"]["dtype"] for w in specs if w["dtype"] == "float32"} == dtypes
        assert all("quantization" not in w for w in specs if w["dtype"] != "float32")
    specs = {w["name"]: w for g in load_model_json(converted["saved_model-globs"])["weightsManifest"]
             for w in g["weights"]}
    for name, w in specs.items():
        if w["dtype"] == "float32":
            assert w["quantization"]["dtype"] == ("uint8" if "Conv2D" in name else "float16"), name
    int_weights = [w for w in specs.values() if w["dtype"] == "int32"]
    assert int_weights, "the int64 gather indices are stored as int32"


@pytest.mark.parametrize("case", ["tf_keras_cnn-shards1000", "saved_model-shards256"])
def test_shards_are_cut_at_the_asked_size(case, converted):
    size = CASES[case][1]["weight_shard_size_bytes"]
    folder = converted[case]
    [group] = load_model_json(folder)["weightsManifest"]
    sizes = [(folder / p).stat().st_size for p in group["paths"]]
    assert len(sizes) > 1 and all(s == size for s in sizes[:-1]) and 0 < sizes[-1] <= size
    assert group["paths"] == [f"group1-shard{i}of{len(sizes)}.bin" for i in range(1, len(sizes) + 1)]
    whole = converted[case.split("-")[0]]
    [g1] = load_model_json(whole)["weightsManifest"]
    assert b"".join((folder / p).read_bytes() for p in group["paths"]) == (whole / g1["paths"][0]).read_bytes()


# ---------------------------------------------------------------- against the official converter

def _official(source: Source, out: Path, opts: dict) -> Path:
    from tensorflowjs.converters import converter, tf_saved_model_conversion_v2 as v2

    kw = {"quantization_dtype_map": opts.get("quantization") or None,
          "weight_shard_size_bytes": opts.get("weight_shard_size_bytes", 4194304)}
    if source.official == "keras":
        converter.dispatch_keras_h5_to_tfjs_graph_model_conversion(str(source.path), str(out), **kw)
    elif source.official == "tf_saved_model":
        v2.convert_tf_saved_model(str(source.path), str(out), **kw)
    elif source.official == "tf_hub":
        v2.convert_tf_hub_module(str(source.path), str(out), signature="default", **kw)
    elif source.official == "tf_frozen_model":
        v2.convert_tf_frozen_model(str(source.path), ",".join(source.options["output_node_names"]), str(out), **kw)
    return out


@pytest.fixture(scope="module")
def official(sources, work) -> dict[str, Path]:
    out = {}
    for case, (src, opts) in CASES.items():
        if sources[src].official:
            out[case] = _official(sources[src], work / "official" / case, opts)
    return out


def _ops(model_json) -> collections.Counter:
    return collections.Counter(n["op"] for n in model_json["modelTopology"]["node"])


def _weights(folder: Path):
    mj = load_model_json(folder)
    data = b"".join((folder / p).read_bytes() for g in mj["weightsManifest"] for p in g["paths"])
    return mj, data, [w for g in mj["weightsManifest"] for w in g["weights"]]


@pytest.mark.parametrize("case", [c for c in CASES if c not in DIFFERS_FROM_OFFICIAL
                                  and CASES[c][0] in ("tf_keras_cnn", "saved_model", "hub_tf2", "frozen_graph")])
def test_same_weight_bytes_and_ops_as_the_official_converter(case, converted, official, sources):
    ours, ours_data, ours_specs = _weights(converted[case])
    theirs, their_data, their_specs = _weights(official[case])
    assert ours_data == their_data
    prefix = "StatefulPartitionedCall/" if sources[CASES[case][0]].input_format == "keras" else ""
    assert [{**w, "name": prefix + w["name"]} for w in ours_specs] == their_specs
    assert _ops(ours) == _ops(theirs)
    if sources[CASES[case][0]].input_format != "tf_frozen_model":   # theirs has no input signature there
        assert {k: v["name"] for k, v in ours["signature"]["inputs"].items()} == \
               {k: v["name"] for k, v in theirs["signature"]["inputs"].items()}


def test_layer_norm_differs_from_official_on_purpose(converted, official, sources, device):
    """The official output keeps FusedBatchNormV3(is_training) -- NaN in TF.js; this runtime
    computes the batch statistics right; ours is plain ops that both run (other tests)."""
    from wgpu_runtime.format import load_artifacts
    from wgpu_runtime.graph.model import GraphModel

    case = "tf_keras_layer_norm"
    theirs, ours = load_model_json(official[case]), load_model_json(converted[case])
    bns = [n for n in theirs["modelTopology"]["node"] if n["op"] == "FusedBatchNormV3"]
    assert len(bns) == 2 and all(n["attr"]["is_training"]["b"] for n in bns)
    assert not any(op.startswith("FusedBatchNorm") for op in _ops(ours))
    s = sources[case]
    [result] = tfjs_predict_many([{"model_dir": official[case], "inputs": s.feeds}])
    assert np.isnan(result[0]).all()
    model = GraphModel(load_artifacts(official[case]), device)
    names = {"ln_two_axes": "Identity:0", "side": "Identity_1:0"}   # the official signature keys
    for key, y in zip(names, model.execute(s.feeds, list(names.values()))):
        np.testing.assert_allclose(y, s.ref[key], **FLOAT_TOL)


@pytest.mark.parametrize("case", ["keras3_rnn_saved_model", "tf_keras_rnn", "keras3_rnn_h5"])
def test_fixed_length_recurrent_models_have_no_control_flow(case, converted, official, sources):
    ours = _ops(load_model_json(converted[case]))
    assert not {"Enter", "Exit", "Merge", "Switch", "While", "StatelessWhile"} & set(ours)
    assert not any("TensorList" in op for op in ours)
    if case in official:   # the official converter writes v1 loops
        assert {"Enter", "Exit", "Merge", "Switch", "NextIteration"} <= set(_ops(load_model_json(official[case])))
    if case == "keras3_rnn_saved_model":   # ... which TF.js cannot run for Keras 3's
        [result] = tfjs_predict_many([{"model_dir": official[case], "inputs": sources[case].feeds}])
        assert isinstance(result, TfjsError) and "Cannot compute the outputs" in str(result)


# ---------------------------------------------------------------- the CLI and bad inputs

def _cli(*args):
    """The real command line in-process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from wgpu_runtime.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(["convert", *map(str, args)])
        except SystemExit as e:   # argparse errors
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def _one_error_line(rc, err, *needles, status=2):
    """One ``error:`` line on stderr and the documented exit status: 2 a usage error (a flag, a
    missing path, an output in the way), 3 a model the converter cannot convert."""
    assert rc == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]


def test_bad_inputs_give_one_error_line(work, sources):
    bad = work / "bad"
    bad.mkdir(exist_ok=True)
    (bad / "corrupt.h5").write_bytes(b"this is not an HDF5 file" * 10)
    out = bad / "out"
    _one_error_line(*_cli("--input_format=keras", bad / "missing.h5", out)[::2], "not found")
    _one_error_line(*_cli("--input_format=keras", "--output_format=tfjs_graph_model", bad / "corrupt.h5", out)[::2],
                    "not a readable HDF5 file", status=3)
    _one_error_line(*_cli("--input_format=tf_saved_model", "--signature_name=predict", sources["saved_model"].path,
                          out)[::2], "no signature 'predict'", "serving_default", status=3)
    _one_error_line(*_cli("--input_format=tf_saved_model", "--saved_model_tags=train", sources["saved_model"].path,
                          out)[::2], "no MetaGraph with tags train", status=3)
    _one_error_line(*_cli("--input_format=tf_frozen_model", "--output_format=tfjs_layers_model",
                          sources["frozen_graph"].path, out)[::2], "unsupported conversion")
    _one_error_line(*_cli("--input_format=tf_frozen_model", sources["frozen_graph"].path, out)[::2],
                    "--output_node_names is required")
    _one_error_line(*_cli("--input_format=tf_frozen_model", "--output_node_names=nope", sources["frozen_graph"].path,
                          out)[::2], "nope", status=3)
    _one_error_line(*_cli("--input_format=tf_saved_model", bad / "corrupt.h5", out)[::2], "not a SavedModel folder", status=3)
    _one_error_line(*_cli("--input_format=tf_hub", sources["frozen_graph"].path, out)[::2], "not a TF Hub module folder", status=3)
    _one_error_line(*_cli(file_table_model(bad / "file_table"), out)[::2], "lookup table is initialised from a file",
                    "vocab.txt", "InitializeTableFromTextFileV2", status=3)
    assert not out.exists()


def test_unsupported_ops_fail_naming_them_and_skip_op_check_writes_anyway(work):
    sm = unsupported_ops(work / "svd")
    out = work / "svd" / "web_model"
    rc, _, err = _cli(sm, out)
    _one_error_line(rc, err, "Svd (used by ", "--skip_op_check", status=3)
    assert "Svd" in err and err.count("Svd") >= 3       # the op and its two nodes
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(".web_model")]
    rc, _, err = _cli("--skip_op_check", sm, out)
    assert rc == 0, err
    assert "Svd" in _ops(load_model_json(out))


def test_existing_output_needs_overwrite_and_is_replaced_whole(work, sources):
    s = sources["frozen_graph"]
    out = work / "overwrite" / "web_model"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    rc, _, err = _cli("--input_format=tf_frozen_model", "--output_node_names=scores", s.path, out)
    _one_error_line(rc, err, "not empty", "--overwrite")
    assert (out / "keep.txt").read_text() == "mine"
    rc, _, err = _cli("--input_format=tf_frozen_model", "--output_node_names=scores", "--overwrite", s.path, out)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["group1-shard1of1.bin", "model.json"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["web_model"]


def test_cli_sends_layers_outputs_to_the_layers_converter(work, sources):
    out = work / "cli_layers"
    rc, _, err = _cli("--input_format=keras", sources["tf_keras_cnn"].path, out)   # default: tfjs_layers_model
    assert rc == 0, err
    assert load_model_json(out)["format"] == "layers-model"
    rc, text, _ = _cli("--version")
    assert rc == 0 and "wgpu-runtime" in text and "tensorflow" in text


def test_metadata_and_structured_output_names(work, sources):
    meta = work / "meta.json"
    meta.write_text(json.dumps({"labels": ["cat", "dog"]}))
    out = work / "with_metadata"
    rc, _, err = _cli(f"--metadata=info:{meta}", "--use_structured_outputs_names", sources["saved_model"].path, out)
    assert rc == 0, err
    mj = load_model_json(out)
    assert mj["userDefinedMetadata"] == {"info": {"labels": ["cat", "dog"]}, "structuredOutputKeys": ["features", "logits"]}
    assert mj["convertedBy"].startswith("wgpu-runtime converter") and mj["generatedBy"]
    _one_error_line(*_cli(f"--metadata=info:{work / 'nope.json'}", sources["saved_model"].path, work / "x")[::2],
                    "--metadata info: file not found")


def test_debug_ops_are_stripped_unless_asked_not_to(work):
    sm = debug_ops_model(work / "debug")
    out = convert_graph(sm, work / "debug" / "stripped", "tf_saved_model", ConvertOptions()).parent
    ops = _ops(load_model_json(out))
    assert not {"CheckNumerics", "Assert"} & set(ops)
    x = np.array([[1.0, -2.0, 3.0]], np.float32)
    [y] = tfjs_predict_many([{"model_dir": out, "inputs": {"x": x}}])[0]
    np.testing.assert_array_equal(y, np.maximum(2 * x, 0) + 1)
    with pytest.raises(ConversionError, match="CheckNumerics"):
        convert_graph(sm, work / "debug" / "kept", "tf_saved_model", ConvertOptions(strip_debug_ops=False))


def test_loops_that_cannot_be_unrolled_are_lowered_or_kept_as_v2(work):
    sm, feeds, ref = dynamic_loop_model(work / "loop")
    v1 = convert_graph(sm, work / "loop" / "v1", "tf_saved_model", ConvertOptions(skip_op_check=True)).parent
    v2 = convert_graph(sm, work / "loop" / "v2", "tf_saved_model",
                       ConvertOptions(skip_op_check=True, control_flow_v2=True)).parent
    ops1, mj2 = _ops(load_model_json(v1)), load_model_json(v2)
    assert {"Enter", "Exit", "Merge", "Switch", "LoopCond"} <= set(ops1)
    assert {"While", "StatelessWhile"} & set(_ops(mj2)) and mj2["modelTopology"]["library"]["function"]
    fn_weights = [w["name"] for g in mj2["weightsManifest"] for w in g["weights"] if "/" in w["name"]]
    fn_names = {f["signature"]["name"] for f in mj2["modelTopology"]["library"]["function"]}
    assert any(n.split("/")[0] in fn_names for n in fn_weights), "library constants are weights named after their function"
    for folder in (v1, v2):   # TensorFlow itself runs both forms with the written weights
        np.testing.assert_allclose(tf_run_graph_model(folder, feeds)["value"], ref["value"])


def test_progress_display_names_each_phase(work, sources):
    import io

    from rich.console import Console

    from wgpu_runtime.convert.progress import PhaseProgress

    text = io.StringIO()
    progress = PhaseProgress(Console(file=text, force_terminal=True, width=120))
    opts = ConvertOptions(output_node_names=["scores"], progress=progress)
    with progress:
        convert_graph(sources["frozen_graph"].path, work / "progress", "tf_frozen_model", opts)
    shown = text.getvalue()
    for phase in ("loading and freezing frozen.pb", "Grappler", "checking ops", "writing"):
        assert phase in shown


def test_quantize_flag_without_value_never_swallows_a_path(work, sources):
    """As a user runs it: a subprocess, paths with spaces, output piped (no progress)."""
    folder = work / "cli dir with spaces"
    folder.mkdir()
    h5 = folder / "my model.h5"
    shutil.copy(sources["tf_keras_cnn"].path, h5)
    out = folder / "web model"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}     # the user's environment
    proc = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "convert", "--input_format=keras",
                           "--output_format=tfjs_graph_model", "--quantize_uint8", str(h5), str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == "", "quiet when piped (TensorFlow's own logs hidden too)"
    specs = [w for g in load_model_json(out)["weightsManifest"] for w in g["weights"]]
    assert all(w["quantization"]["dtype"] == "uint8" for w in specs if w["dtype"] == "float32")


@pytest.mark.parametrize("tokens, expected", [
    (["--quantize_uint8", "saved_model/", "web_model/"], ("saved_model/", "web_model/", True)),
    (["--quantize_uint8", "conv*", "in", "out"], ("in", "out", "conv*")),
    (["in", "out", "--quantize_uint8", "conv*"], ("in", "out", "conv*")),
    (["--quantize_uint8=conv*,dense*", "my in", "my out"], ("my in", "my out", "conv*,dense*")),
    (["--quantize_uint8", "--skip_op_check", "in", "out"], ("in", "out", True)),
    (["--quantize_uint8", "in", "out", "--skip_op_check"], ("in", "out", True)),
    (["--quantize_uint8", "--", "-in", "out"], ("-in", "out", True)),
])
def test_optional_flag_values_are_resolved_against_the_paths(tokens, expected):
    from wgpu_runtime.convert.cli import parse_args

    args = parse_args(tokens)
    assert (args.input_path, args.output_path, args.quantize_uint8) == expected


def test_two_quantize_flags_and_an_existing_input_pick_the_right_paths(work, sources):
    from wgpu_runtime.convert.cli import parse_args

    h5 = str(sources["tf_keras_cnn"].path)
    args = parse_args(["--quantize_uint8", h5, "out", "--quantize_float16", "dense*"])
    assert (args.input_path, args.output_path, args.quantize_uint8, args.quantize_float16) == (h5, "out", True, "dense*")
    args = parse_args(["--quantize_uint8", "conv*", "--quantize_float16", h5, "out"])
    assert (args.input_path, args.output_path, args.quantize_uint8, args.quantize_float16) == (h5, "out", "conv*", True)
    args = parse_args(["--control_flow_v2", "false", h5, "out"])
    assert args.control_flow_v2 is False and args.input_path == h5
    args = parse_args(["--control_flow_v2", h5, "out"])
    assert args.control_flow_v2 is True and args.input_path == h5


def test_quantization_globs_match_as_the_official_converter():
    opts = ConvertOptions(quantization={"uint8": ["conv*"], "float16": True})
    q = opts.quantize_fn(["conv1/w", "conv2/w", "dense/w"])
    assert (q("conv1/w"), q("conv2/w"), q("dense/w")) == ("uint8", "uint8", "float16")
    with pytest.raises(ConversionError, match="matches both"):
        ConvertOptions(quantization={"uint8": ["conv*"], "uint16": ["*w"]}).quantize_fn(["conv1/w"])
    with pytest.raises(ConversionError, match="catch-all"):
        ConvertOptions(quantization={"uint8": True, "uint16": True}).quantize_fn(["a"])
    keras_names = ConvertOptions(quantization={"uint8": ["StatefulPartitionedCall/model/conv*"]})
    q = keras_names.quantize_fn(["model/conv/w", "model/dense/w"],
                                {"model/conv/w": "StatefulPartitionedCall/model/conv/w",
                                 "model/dense/w": "StatefulPartitionedCall/model/dense/w"})
    assert (q("model/conv/w"), q("model/dense/w")) == ("uint8", None)


# ---------------------------------------------------------------- each rewrite on its own

def _frozen(fn, *specs, lower=True):
    """(GraphDef, input placeholder names, output tensor names) of a frozen tf.function."""
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    cf = tf.function(fn, input_signature=list(specs)).get_concrete_function()
    frozen = convert_to_constants.convert_variables_to_constants_v2(cf, lower_control_flow=lower)
    return frozen.graph.as_graph_def(), [t.name for t in cf.inputs], [t.name for t in frozen.outputs]


def _tf_run(graph_def, feeds: dict, fetches):
    import tensorflow as tf

    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=g) as sess:
        return sess.run(list(fetches), feed_dict=feeds)


def _grappler(graph_def, outputs, passes=None):
    from tensorflow.core.protobuf import meta_graph_pb2

    from wgpu_runtime.convert.optimize import grappler

    return grappler.run(graph_def, [o.split(":")[0] for o in outputs], meta_graph_pb2.SignatureDef(),
                        passes or grappler.FIRST_PASSES)


def _ops_of(graph_def) -> collections.Counter:
    return collections.Counter(n.op for n in graph_def.node)


def _rng():
    return np.random.default_rng(42)


def test_fold_batch_norms_keeps_outputs():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.fold_batch_norms import fold_batch_norms

    r = _rng()
    w = tf.constant(r.normal(size=(3, 3, 4, 6)).astype(np.float32))
    dw = tf.constant(r.normal(size=(3, 3, 6, 2)).astype(np.float32))
    b = tf.constant(r.normal(size=(12,)).astype(np.float32))
    stats = [tf.constant(v.astype(np.float32)) for v in (r.uniform(.5, 1.5, 6), r.normal(size=6), r.normal(size=6),
                                                         r.uniform(.5, 1.5, 6))]
    stats12 = [tf.constant(v.astype(np.float32)) for v in (r.uniform(.5, 1.5, 12), r.normal(size=12),
                                                           r.normal(size=12), r.uniform(.5, 1.5, 12))]

    def f(x):
        y = tf.compat.v1.nn.fused_batch_norm(tf.nn.conv2d(x, w, 1, "SAME"), *stats[:2], stats[2], stats[3],
                                             is_training=False, epsilon=1e-3)[0]
        z = tf.nn.depthwise_conv2d(y, dw, [1, 1, 1, 1], "VALID") + b
        return tf.compat.v1.nn.fused_batch_norm(z, *stats12[:2], stats12[2], stats12[3], is_training=False)[0]

    gd, ins, outs = _frozen(f, tf.TensorSpec([2, 7, 7, 4], tf.float32))
    gd = _grappler(gd, outs)
    folded = fold_batch_norms(gd)
    assert _ops_of(gd)["FusedBatchNormV3"] == 2 and not _ops_of(folded)["FusedBatchNormV3"]
    x = _rng().normal(size=(2, 7, 7, 4)).astype(np.float32)
    np.testing.assert_allclose(*[_tf_run(g, {ins[0]: x}, outs)[0] for g in (gd, folded)], rtol=1e-5, atol=1e-5)


def test_fold_batch_norms_leaves_a_conv_read_twice():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.fold_batch_norms import fold_batch_norms

    w = tf.constant(_rng().normal(size=(1, 1, 2, 3)).astype(np.float32))
    c = [tf.constant(np.full(3, v, np.float32)) for v in (2.0, 0.5, 0.1, 4.0)]

    def f(x):
        conv = tf.nn.conv2d(x, w, 1, "SAME")
        bn = tf.compat.v1.nn.fused_batch_norm(conv, c[0], c[1], c[2], c[3], is_training=False)[0]
        return bn + conv

    gd, ins, outs = _frozen(f, tf.TensorSpec([1, 2, 2, 2], tf.float32))
    gd = _grappler(gd, outs)
    assert fold_batch_norms(gd) is gd


def test_normalize_bias_add_only_for_per_channel_biases():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.normalize_bias_add import normalize_bias_add

    r = _rng()
    w = tf.constant(r.normal(size=(4, 3)).astype(np.float32))
    b = tf.constant(r.normal(size=(3,)).astype(np.float32))

    def f(x, y):
        return tf.matmul(x, w) + b, tf.matmul(x, w * 2.0) + y      # a bias, and a full tensor

    gd, ins, outs = _frozen(f, tf.TensorSpec([2, 4], tf.float32), tf.TensorSpec([2, 3], tf.float32))
    gd = _grappler(gd, outs)
    before = _ops_of(gd)
    normalized = type(gd)()
    normalized.CopyFrom(gd)
    normalized = normalize_bias_add(normalized)
    after = _ops_of(normalized)
    assert after["BiasAdd"] == before["BiasAdd"] + 1 and after["AddV2"] == before["AddV2"] - 1
    feeds = {ins[0]: r.normal(size=(2, 4)).astype(np.float32), ins[1]: r.normal(size=(2, 3)).astype(np.float32)}
    for a, b_ in zip(_tf_run(gd, feeds, outs), _tf_run(normalized, feeds, outs)):
        np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_training_batch_norm_becomes_plain_ops(data_format):
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.layer_norm import rewrite_training_batch_norms

    r = _rng()
    scale = tf.constant(r.uniform(.5, 1.5, 5).astype(np.float32))
    offset = tf.constant(r.normal(size=5).astype(np.float32))
    shape = [2, 3, 4, 5] if data_format == "NHWC" else [2, 5, 3, 4]

    def f(x):
        return tf.compat.v1.nn.fused_batch_norm(x * 2.0, scale, offset, epsilon=0.01, is_training=True,
                                                data_format=data_format)[0]

    gd, ins, outs = _frozen(f, tf.TensorSpec(shape, tf.float32))
    rewritten = rewrite_training_batch_norms(gd)
    assert not any(op.startswith("FusedBatchNorm") for op in _ops_of(rewritten))
    x = r.normal(size=shape).astype(np.float32) * 3 + 1
    np.testing.assert_allclose(*[_tf_run(g, {ins[0]: x}, outs)[0] for g in (gd, rewritten)], rtol=1e-5, atol=1e-5)
    [y] = reference_run(rewritten, {ins[0].split(":")[0]: x}, outs)   # the registry's ops give it too
    np.testing.assert_allclose(y, _tf_run(gd, {ins[0]: x}, outs)[0], rtol=1e-5, atol=1e-5)


def test_prelu_is_rebuilt_and_fused():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize import grappler
    from wgpu_runtime.convert.optimize.fuse_depthwise import fuse_depthwise
    from wgpu_runtime.convert.optimize.normalize_bias_add import normalize_bias_add
    from wgpu_runtime.convert.optimize.prelu import fuse_prelu, rebuild_prelu

    r = _rng()
    alpha = tf.constant(r.uniform(0.1, 0.3, 4).astype(np.float32))
    w = tf.constant(r.normal(size=(3, 3, 4, 4)).astype(np.float32))
    b = tf.constant(r.normal(size=4).astype(np.float32))

    def prelu(x):
        return tf.nn.relu(x) + (-alpha) * tf.nn.relu(-x)

    def f(x):
        return prelu(tf.nn.conv2d(prelu(x * 1.5), w, 1, "SAME") + b)

    gd, ins, outs = _frozen(f, tf.TensorSpec([1, 5, 5, 4], tf.float32))
    x = r.normal(size=(1, 5, 5, 4)).astype(np.float32)
    want = _tf_run(gd, {ins[0]: x}, outs)[0]
    g = normalize_bias_add(_grappler(gd, outs))
    for n in g.node:
        if n.op == "Conv2D":
            n.device = "/device:CPU:0"
    g = _grappler(g, outs, grappler.FUSION_PASSES)
    g = rebuild_prelu(g)
    assert _ops_of(g)["Prelu"] == 2
    g = fuse_prelu(fuse_depthwise(g))
    ops = _ops_of(g)
    assert ops["Prelu"] == 1 and ops["_FusedConv2D"] == 1 and not ops["Relu"] and not ops["Neg"]
    fused = next(n for n in g.node if n.op == "_FusedConv2D")
    assert [s.decode() for s in fused.attr["fused_ops"].list.s] == ["BiasAdd", "Prelu"]
    [y] = reference_run(g, {ins[0].split(":")[0]: x}, outs)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_depthwise_conv_is_fused_with_bias_and_activation():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.fuse_depthwise import fuse_depthwise

    r = _rng()
    w = tf.constant(r.normal(size=(3, 3, 3, 2)).astype(np.float32))
    b = tf.constant(r.normal(size=6).astype(np.float32))

    def f(x):
        a = tf.nn.relu6(tf.nn.bias_add(tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME"), b))
        return tf.nn.elu(tf.nn.depthwise_conv2d(a[..., :3], w, [1, 1, 1, 1], "VALID")), \
            tf.nn.bias_add(tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "VALID"), b)

    gd, ins, outs = _frozen(f, tf.TensorSpec([1, 6, 6, 3], tf.float32))
    gd = _grappler(gd, outs)
    x = r.normal(size=(1, 6, 6, 3)).astype(np.float32)
    want = _tf_run(gd, {ins[0]: x}, outs)
    fused = fuse_depthwise(gd)      # (rewrites may edit their input graph)
    kinds = sorted(tuple(s.decode() for s in n.attr["fused_ops"].list.s) for n in fused.node
                   if n.op == "FusedDepthwiseConv2dNative")
    assert kinds == [("BiasAdd",), ("BiasAdd", "Relu6"), ("NoOp", "Elu")]
    assert not _ops_of(fused)["DepthwiseConv2dNative"]
    got = reference_run(fused, {ins[0].split(":")[0]: x}, outs)
    for a, b_ in zip(got, want):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5)


def test_fused_activations_tfjs_cannot_run_are_split_out():
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    from wgpu_runtime.convert.optimize.fused_guard import unfuse_unsupported

    r = _rng()
    w = tf.constant(r.normal(size=(4, 3)).astype(np.float32))
    b = tf.constant(r.normal(size=3).astype(np.float32))
    gd, ins, outs = _frozen(lambda x: tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w), b)), tf.TensorSpec([2, 4], tf.float32))
    for n in gd.node:
        if n.op == "MatMul":
            n.device = "/device:CPU:0"
    fused = _grappler(gd, outs, ["remap"])
    node = next(n for n in fused.node if n.op == "_FusedMatMul")
    assert [s.decode() for s in node.attr["fused_ops"].list.s] == ["BiasAdd", "Relu"]
    assert unfuse_unsupported(fused) is fused                     # Relu: TF.js runs it fused
    tanh = graph_pb2.GraphDef()
    tanh.CopyFrom(fused)
    node = next(n for n in tanh.node if n.op == "_FusedMatMul")
    node.attr["fused_ops"].list.s[1] = b"Tanh"                     # what oneDNN's remap makes
    split = unfuse_unsupported(tanh)
    assert not _ops_of(split)["_FusedMatMul"] and _ops_of(split)["Tanh"] == 1
    x = r.normal(size=(2, 4)).astype(np.float32)
    want = reference_run(tanh, {ins[0].split(":")[0]: x}, outs)[0]
    np.testing.assert_allclose(_tf_run(split, {ins[0]: x}, outs)[0], want, rtol=1e-6, atol=1e-6)


def test_fixed_length_loops_are_unrolled_and_their_tensor_lists_become_slices():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.tensor_lists import rewrite_tensor_lists
    from wgpu_runtime.convert.optimize.unroll import has_loops, unroll_loops

    w = tf.constant(_rng().normal(size=(3, 3)).astype(np.float32) * 0.5)

    def f(x):                                    # x: [time 4, batch, 3] -- a tiny RNN
        steps = tf.TensorArray(tf.float32, size=4).unstack(x)
        outs = tf.TensorArray(tf.float32, size=4)

        def body(t, h, outs):
            h = tf.tanh(tf.matmul(steps.read(t), w) + h)
            return t + 1, h, outs.write(t, h)

        _, h, outs = tf.while_loop(lambda t, *_: t < 4, body, (0, tf.zeros_like(x[0]), outs))
        return h, outs.stack()

    gd, ins, outs = _frozen(f, tf.TensorSpec([4, 2, 3], tf.float32), lower=False)
    x = _rng().normal(size=(4, 2, 3)).astype(np.float32)
    want = _tf_run(gd, {ins[0]: x}, outs)
    g = _grappler(gd, outs)
    assert has_loops(g)
    g, done, left = unroll_loops(g)
    assert len(done) == 1 and "4 iterations" in done[0] and not left
    g = rewrite_tensor_lists(_grappler(g, outs))
    g = _grappler(g, outs)
    assert not has_loops(g) and not any("TensorList" in op for op in _ops_of(g)), _ops_of(g)
    for a, b_ in zip(_tf_run(g, {ins[0]: x}, outs), want):
        np.testing.assert_allclose(a, b_, rtol=1e-6, atol=1e-6)


def test_loops_whose_trip_count_depends_on_data_are_left_alone():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.unroll import unroll_loops

    def f(x):
        return tf.while_loop(lambda i, v: v < x, lambda i, v: (i + 1, v * 2.0), (0, tf.constant(1.0)))[0]

    gd, _, outs = _frozen(f, tf.TensorSpec([], tf.float32), lower=False)
    g = _grappler(gd, outs)
    same, done, left = unroll_loops(g)
    assert same is g and not done and "depends on values computed at run time" in left[0]


def test_op_check_reads_the_registry_and_looks_into_functions():
    from tensorflow.core.framework import graph_pb2

    from wgpu_runtime.convert.graph.op_check import UnsupportedOpsError, check_ops, missing_ops
    from wgpu_runtime.ops import registry

    gd = graph_pb2.GraphDef()
    gd.node.add(name="x", op="Placeholder")
    gd.node.add(name="w", op="Const")
    gd.node.add(name="a", op="Relu", input=["x"])
    gd.node.add(name="s", op="Svd", input=["a"])
    fn = gd.library.function.add()
    fn.signature.name = "f"
    fn.node_def.add(name="inner", op="Qr")
    assert registry.get("Relu") is not None and registry.get("Svd") is None
    assert missing_ops(gd) == {"Qr": ["inner"], "Svd": ["s"]}
    with pytest.raises(UnsupportedOpsError, match=r"Qr \(used by inner\); Svd \(used by s\)"):
        check_ops(gd)


# ---------------------------------------------------------------- lookup tables (modelInitializer)

TABLE_CASES = ("one_table", "tables", "tables_tokens", "keras_lookup")
STRING_INPUTS = {"tables_tokens"}      # tests/tfjs_harness.py sends numbers only


@pytest.fixture(scope="module")
def tables(work) -> dict[str, tuple[Source, Path]]:
    """case -> (source, our converted folder)."""
    folder = work / "tables"
    folder.mkdir(exist_ok=True)
    serve, tokens = lookup_tables_model(folder)
    one = Source(lookup_table_model(folder), "tf_saved_model", {"ids": np.array([1, 2, 5, 3], np.int64)},
                 {"values": np.array([10.0, 20.0, -1.0, 30.0], np.float32)}, official="tf_saved_model")
    srcs = {"one_table": one, "tables": serve, "tables_tokens": tokens, "keras_lookup": keras_lookup_model(folder)}
    return {case: (s, convert_graph(s.path, folder / f"out_{case}", s.input_format,
                                    ConvertOptions(**s.options)).parent) for case, s in srcs.items()}


def _same_values(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, **FLOAT_TOL, err_msg=what)


def test_lookup_tables_run_in_tfjs_as_in_tensorflow(tables):
    cases = [c for c in TABLE_CASES if c not in STRING_INPUTS]
    results = tfjs_predict_many([{"model_dir": tables[c][1], "inputs": tables[c][0].feeds} for c in cases])
    for case, result in zip(cases, results):
        if isinstance(result, TfjsError):
            pytest.fail(f"{case}: {result}")
        ref = tables[case][0].ref
        keys = list(load_model_json(tables[case][1])["signature"]["outputs"])
        assert sorted(keys) == sorted(ref) and len(result) == len(keys)
        for key, y in zip(keys, result):
            _same_values(y, ref[key], f"{case}: {key}")


@pytest.mark.parametrize("case", TABLE_CASES)
def test_lookup_tables_run_in_the_runtime_as_in_tensorflow(case, tables, device):
    from wgpu_runtime.format import load_artifacts
    from wgpu_runtime.graph.model import GraphModel

    source, folder = tables[case]
    model = GraphModel(load_artifacts(folder), device)
    assert {s.name.split(":")[0] for s in model.inputs} == set(source.feeds), "table handles are not user inputs"
    keys = sorted(source.ref)
    for key, y in zip(keys, model.execute(source.feeds, keys)):
        _same_values(y, source.ref[key], f"{case}: {key}")


def _resource_wiring(model_json) -> dict[str, str]:
    """inference resource input key -> the initializer output key with the same resourceId."""
    by_id = {o["resourceId"]: k for k, o in model_json["initializerSignature"]["outputs"].items()}
    assert len(by_id) == len(model_json["initializerSignature"]["outputs"]), "resource ids are distinct"
    return {k: by_id[i["resourceId"]] for k, i in model_json["signature"]["inputs"].items() if "resourceId" in i}


def _initializer_ops(model_json) -> collections.Counter:
    return collections.Counter(n["op"] for n in model_json["modelInitializer"]["node"])


@pytest.mark.parametrize("case", ["one_table", "tables"])
def test_lookup_tables_are_written_as_the_official_converter_writes_them(case, tables, work):
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as v2

    source, ours_dir = tables[case]
    theirs_dir = work / "tables" / f"official_{case}"
    v2.convert_tf_saved_model(str(source.path), str(theirs_dir),
                              signature_def=source.options.get("signature_name", "serving_default"))
    ours, theirs = load_model_json(ours_dir), load_model_json(theirs_dir)
    assert _initializer_ops(ours) == _initializer_ops(theirs)
    assert {"HashTableV2", "LookupTableImportV2"} <= set(_initializer_ops(ours))
    assert list(ours["initializerSignature"]) == ["outputs"]
    assert sorted(ours["initializerSignature"]["outputs"]) == sorted(theirs["initializerSignature"]["outputs"])
    assert all(o["dtype"] == "DT_RESOURCE" for o in ours["initializerSignature"]["outputs"].values())
    assert sorted(ours["signature"]["inputs"]) == sorted(theirs["signature"]["inputs"])
    wiring = _resource_wiring(ours)
    assert wiring and wiring == _resource_wiring(theirs)
    assert all(ours["signature"]["inputs"][k]["dtype"] == "DT_RESOURCE" for k in wiring)
    assert _ops(ours) == _ops(theirs)
    ours_mj, ours_data, ours_specs = _weights(ours_dir)
    _, their_data, their_specs = _weights(theirs_dir)
    assert ours_data == their_data      # the tables' keys and values too, in the same order
    assert [(w["shape"], w["dtype"]) for w in ours_specs] == [(w["shape"], w["dtype"]) for w in their_specs]


def test_a_signature_reading_some_of_the_tables_converts(tables, work):
    """The official converter makes every table of the SavedModel and fails on one its signature
    does not read (KeyError, then its TF1 fallback fails); ours makes the ones read."""
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as v2

    source, folder = tables["tables_tokens"]
    with pytest.raises(AssertionError, match="not in graph"):
        v2.convert_tf_saved_model(str(source.path), str(work / "tables" / "official_tokens"), signature_def="tokens")
    mj = load_model_json(folder)
    assert len(mj["initializerSignature"]["outputs"]) == 1 and _initializer_ops(mj)["HashTableV2"] == 1
    assert list(_resource_wiring(mj).values()) == list(mj["initializerSignature"]["outputs"])


def test_lookups_of_2d_keys_get_the_keys_shape_in_tfjs(tables):
    """TF.js's LookupTableFind returns one value per key, flattened; the converter reshapes it
    to the keys' shape (1-D keys, as in the SavedModel cases above, are written as they are)."""
    mj = load_model_json(tables["keras_lookup"][1])
    nodes = {n["name"]: n for n in mj["modelTopology"]["node"]}
    [find] = [n for n in nodes.values() if n["op"] == "LookupTableFindV2"]
    assert find["name"].endswith("/flat")
    reshape = nodes[find["name"][:-len("/flat")]]
    assert reshape["op"] == "Reshape" and reshape["input"][0] == find["name"]
    assert nodes[reshape["input"][1]]["op"] == "Shape" and nodes[reshape["input"][1]]["input"] == [find["input"][1]]
    assert "Reshape" not in _ops(load_model_json(tables["tables"][1]))


def test_initializer_weights_never_overwrite_the_models(tables, work):
    """The initializer's constants share the model's weight names (TF.js gives both graphs one
    weight map): a clashing name is renamed, not silently shadowed."""
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    from wgpu_runtime.convert.graph.write import INITIALIZER_PREFIX, extract_initializer_weights

    gd = graph_pb2.GraphDef()
    for name in ("keys", "values"):
        gd.node.add(name=name, op="Const").attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.arange(3)))
    gd.node.add(name="table", op="HashTableV2")
    gd.node.add(name="import", op="LookupTableImportV2", input=["table", "keys", "values", "^keys"])
    weights = extract_initializer_weights(gd, {"keys", INITIALIZER_PREFIX + "keys"})
    assert [n for n, _ in weights] == [INITIALIZER_PREFIX + "keys_1", "values"]
    assert list(gd.node[3].input) == ["table", INITIALIZER_PREFIX + "keys_1", "values", "^" + INITIALIZER_PREFIX + "keys_1"]
    # and every converted table model's weight names are distinct, the initializer's included
    for _, folder in tables.values():
        names = [w["name"] for g in load_model_json(folder)["weightsManifest"] for w in g["weights"]]
        assert len(names) == len(set(names))
        init_consts = [n["name"] for n in load_model_json(folder)["modelInitializer"]["node"] if n["op"] == "Const"]
        assert set(init_consts) <= set(names)


def test_a_table_from_a_file_is_refused_naming_it(work):
    src = file_table_model(work / "file_table")
    out = work / "file_table" / "web_model"
    with pytest.raises(ConversionError, match=r"initialised from a file \(vocab\.txt; InitializeTableFromTextFileV2\)"):
        convert_graph(src, out, "tf_saved_model", ConvertOptions())
    assert not out.exists()


# ---------------------------------------------------------------- Keras 3 batch norms folded

# MobileNetV2's outputs are softmax probabilities (max ~0.16, logits std ~2); TF.js, the runtime
# and TF differ by <= 2.1e-6 there (fp32 accumulation order through 52 convolutions). 2e-5
# leaves a 10x margin; a scale or offset folded into the wrong channel moves them by >1e-3.
MOBILENET_TOL = {"atol": 2e-5, "rtol": 0}
KERAS3_BN_CASES = ("keras3_mobilenet_v2", "tf_keras_mobilenet_v2", "keras3_conv_read_twice",
                   "keras3_mobilenet_v2_saved_model")


@pytest.fixture(scope="module")
def keras3_bn(work) -> dict[str, tuple[Source, Path]]:
    """case -> (source, our graph model folder): Keras 3 and tf_keras MobileNetV2 128x128
    alpha 0.35 (the Keras 3 one also as its SavedModel export), and a Keras 3 model whose convs
    are also read by a Concatenate."""
    from fixtures.convert_sources import keras3_conv_read_twice, mobilenet_v2_sources

    src = work / "bn_src"
    src.mkdir(parents=True, exist_ok=True)
    mobilenets = mobilenet_v2_sources(src)
    sources = dict(zip(KERAS3_BN_CASES, (mobilenets["keras3"], mobilenets["tf_keras"], keras3_conv_read_twice(src))))
    sources["keras3_mobilenet_v2_saved_model"] = mobilenets["keras3_saved_model"]
    return {case: (s, convert_graph(s.path, work / "bn_out" / case, s.input_format, ConvertOptions()).parent)
            for case, s in sources.items()}


def _readers_of(model_json, name) -> list[str]:
    return [n["op"] for n in model_json["modelTopology"]["node"] if any(r.split(":")[0] == name for r in n.get("input", []))]


def test_keras3_mobilenet_v2_converts_to_the_ops_of_tf_keras(keras3_bn, work):
    tf_keras_ops = _ops(load_model_json(keras3_bn["tf_keras_mobilenet_v2"][1]))
    assert tf_keras_ops["FusedDepthwiseConv2dNative"] == 17 and tf_keras_ops["_FusedConv2D"] == 35
    for case in ("keras3_mobilenet_v2", "keras3_mobilenet_v2_saved_model"):
        assert _ops(load_model_json(keras3_bn[case][1])) == tf_keras_ops, case
    # What the fold removes: the official converter (it takes Keras 3 models as SavedModels)
    # leaves Keras 3's batch norms as Mul / AddV2 / AddN.
    s = keras3_bn["keras3_mobilenet_v2_saved_model"][0]
    theirs = _ops(load_model_json(_official(s, work / "bn_official" / "keras3_mobilenet_v2_saved_model", {})))
    assert theirs["Mul"] == 17 and theirs["AddN"] == 10 and theirs["DepthwiseConv2dNative"] == 17, theirs


def test_keras3_batch_norm_models_match_tensorflow_in_tfjs(keras3_bn):
    results = tfjs_predict_many([{"model_dir": folder, "inputs": s.feeds} for s, folder in keras3_bn.values()])
    for case, result in zip(keras3_bn, results):
        if isinstance(result, TfjsError):
            pytest.fail(str(result))
        [y] = result
        tol = FLOAT_TOL if case == "keras3_conv_read_twice" else MOBILENET_TOL
        np.testing.assert_allclose(y, next(iter(keras3_bn[case][0].ref.values())), **tol, err_msg=case)


def test_keras3_batch_norm_models_match_tensorflow_in_the_runtime(keras3_bn, device):
    from wgpu_runtime.format import load_artifacts
    from wgpu_runtime.graph.model import GraphModel

    steps = {}
    for case, (s, folder) in keras3_bn.items():
        model = GraphModel(load_artifacts(folder), device)
        [(key, ref)] = s.ref.items()
        [y] = model.execute(s.feeds, [key])
        tol = FLOAT_TOL if case == "keras3_conv_read_twice" else MOBILENET_TOL
        np.testing.assert_allclose(y, ref, **tol, err_msg=case)
        plan, _ = model.prepare(s.feeds, [key])
        steps[case] = plan.dispatches
    assert steps["keras3_mobilenet_v2"] == steps["keras3_mobilenet_v2_saved_model"] == steps["tf_keras_mobilenet_v2"] <= 67


def test_keras3_batch_norm_is_not_folded_into_a_conv_read_elsewhere(keras3_bn):
    mj = load_model_json(keras3_bn["keras3_conv_read_twice"][1])
    nodes = {n["name"]: n for n in mj["modelTopology"]["node"]}
    conv = [n for n in nodes.values() if n["op"] in ("Conv2D", "_FusedConv2D")]
    dw = [n for n in nodes.values() if n["op"] in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")]
    assert [n["op"] for n in conv + dw] == ["Conv2D", "DepthwiseConv2dNative"]   # no bias, no activation fused
    for node in conv + dw:
        assert sorted(_readers_of(mj, node["name"])) == ["ConcatV2", "Mul"]


def test_fold_channel_scales_keeps_outputs():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.fold_channel_scales import fold_channel_scales
    from wgpu_runtime.convert.optimize.unmerge_residual_bias import unmerge_residual_bias

    r = _rng()

    def const(*shape, low=None):
        return tf.constant((r.uniform(low, 1.5, shape) if low else r.normal(size=shape)).astype(np.float32))

    dw, dw4, dw_b, pw, fc = const(3, 3, 4, 2), const(3, 3, 4, 1), const(3, 3, 4, 1), const(1, 1, 8, 4), const(3, 4)
    s8, b8, s4, b4 = const(8, low=.5), const(8), const(1, 1, 1, 4, low=.5), const(4)
    s3, b3 = const(1, 3, low=.5), const(3)
    k, k_bias, k_scale, k_offset = const(3, 3, 4, 5), const(5), const(5, low=.5), const(5)

    def f(x):
        a = tf.nn.relu6(tf.nn.depthwise_conv2d(x, dw, [1, 1, 1, 1], "SAME") * s8 + b8)    # Keras 3's batch norm
        y = tf.nn.conv2d(a, pw, 1, "SAME")
        y = tf.math.add_n([y, tf.nn.depthwise_conv2d(y, dw4, [1, 1, 1, 1], "SAME") * s4]) + b4   # as Grappler leaves a residual
        z = tf.matmul(tf.reduce_mean(y, [1, 2]), fc, transpose_b=True) * s3 + b3           # [out, in] weights
        with_bias = (tf.nn.conv2d(x, k, 1, "VALID") + k_bias) * k_scale + k_offset           # Conv2D(use_bias=True)
        return y, z, s4 * tf.nn.depthwise_conv2d(x, dw_b, [1, 1, 1, 1], "VALID"), with_bias  # a scale alone

    gd, ins, outs = _frozen(f, tf.TensorSpec([None, 5, 5, 4], tf.float32))
    gd = _grappler(gd, outs)
    before = _ops_of(gd)
    assert before["AddN"] == 1 and before["Mul"] == 5, before
    folded = fold_channel_scales(unmerge_residual_bias(gd))
    after = _ops_of(folded)
    assert not after["AddN"] and not after["Mul"] and after["BiasAdd"] == 4, after
    x = r.normal(size=(2, 5, 5, 4)).astype(np.float32)
    for a, b in zip(_tf_run(gd, {ins[0]: x}, outs), _tf_run(folded, {ins[0]: x}, outs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_fold_channel_scales_leaves_what_others_read():
    import tensorflow as tf

    from wgpu_runtime.convert.optimize.fold_channel_scales import fold_channel_scales

    r = _rng()
    w = tf.constant(r.normal(size=(3, 3, 2, 1)).astype(np.float32))
    s, b = tf.constant(r.uniform(.5, 1.5, 2).astype(np.float32)), tf.constant(r.normal(size=2).astype(np.float32))
    full = tf.constant(r.normal(size=(1, 4, 4, 2)).astype(np.float32))

    def f(x):
        conv = tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME")
        read_twice = conv * s + b, conv                                # the conv is read by another node
        shared = tf.nn.depthwise_conv2d(x * 2.0, w, [1, 1, 1, 1], "SAME") * s   # w is read by both convs
        not_per_channel = tf.nn.depthwise_conv2d(x, w * 3.0, [1, 1, 1, 1], "SAME") * full
        return read_twice + (shared, not_per_channel)

    gd, ins, outs = _frozen(f, tf.TensorSpec([1, 4, 4, 2], tf.float32))
    gd = _grappler(gd, outs)
    assert fold_channel_scales(gd, keep=[o.split(":")[0] for o in outs]) is gd


def test_a_tf1_graph_that_makes_its_own_tables_is_refused(work):
    """A TF1 graph holds HashTableV2 itself and fills it with a table_initializer op that is not
    part of the frozen inference graph: converted, every lookup would return the default."""
    import tensorflow as tf

    folder = work / "tf1_table"
    folder.mkdir(exist_ok=True)
    with tf.Graph().as_default() as g:
        ids = tf.compat.v1.placeholder(tf.int64, [None], name="ids")
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant([1, 2], tf.int64), tf.constant([10.0, 20.0])), -1.0)
        tf.identity(table.lookup(ids), name="values")
    pb = folder / "frozen.pb"
    pb.write_bytes(g.as_graph_def().SerializeToString())
    out = folder / "web_model"
    _one_error_line(*_cli("--input_format=tf_frozen_model", "--output_node_names=values", pb, out)[::2],
                    "makes lookup tables itself", "TF1 table initializers", status=3)
    assert not out.exists()
