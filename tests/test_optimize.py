"""The load-time graph optimizer (wgpu_runtime/graph/optimize): each rewrite on a small hand-built
graph, and real converted models, against the same model loaded with the optimizer off (the
oracle: the graph as the file has it, run op by op; itself checked against numpy / TensorFlow by
tests/test_ops.py and tests/test_models.py) and against TensorFlow's outputs; and that the
rewrites do what they claim (fewer dispatches, fewer nodes).

Tolerances (wgpu_runtime/tolerance.py units: float32 ULPs of the tensor's scale, per="tensor"):
- FOLDED (64 ULP): a scale folded into a filter rounds each product once more and the sums of
  3x3x4 (..x8) products run in another order; measured <= 8 ULP of the output scale here.
- EXACT_ORDER (4 ULP): same arithmetic in the same order (a residual or activation moved into an
  epilogue, element-wise chains), up to FMA contraction by the compiler.
- Models: MOBILENET_ATOL 2e-5 against TensorFlow, as tests/test_convert_graph.py (softmax outputs
  <= ~0.45; 52 convolutions in float32; a channel folded wrongly moves them by > 1e-3), and 1e-4
  of the output scale between the runs with and without the optimizer (FP32_DEEP of
  tests/test_models.py: only accumulation order differs).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures import cache
from fixtures.graph_models import fixture_path, load_io
from wgpu_runtime.format import ModelArtifacts, Signature, TensorSpec, load_artifacts
from wgpu_runtime.format.nodes import NodeDef
from wgpu_runtime.graph import optimize
from wgpu_runtime.graph.model import GraphModel
from wgpu_runtime.tolerance import Tolerance, assert_close

FOLDED = Tolerance(64, "a scale folded into the filter rounds each product once more; sums in another order")
EXACT_ORDER = Tolerance(4, "the same float32 operations in the same order (FMA contraction aside)")
MOBILENET_ATOL = 2e-5
FP32_DEEP = Tolerance(1e-4 / 1.1920929e-07, "52 float32 convolutions: accumulation order only")
F = "float32"


# ------------------------------------------------------------------------------------ helpers
def N(name, op, inputs=(), **attrs):
    if op not in ("Const", "Placeholder") and "T" not in attrs:
        attrs["T"] = F
    return NodeDef(name, op, list(inputs), attrs)


def X(name="x", shape=(-1, 6, 7, 4)):
    return N(name, "Placeholder", dtype=F, shape=tuple(shape))


def C(name):
    return N(name, "Const", dtype=F)


def _art(nodes, weights, outputs=None) -> ModelArtifacts:
    sig = None
    if outputs:
        ins = {n.name: TensorSpec(f"{n.name}:0", n.attrs.get("dtype"), n.attrs.get("shape"))
               for n in nodes if n.op == "Placeholder"}
        sig = Signature(ins, {o: TensorSpec(f"{o}:0", F, None) for o in outputs})
    return ModelArtifacts(path=Path("<test_optimize>"), format="graph-model", generated_by=None, converted_by=None,
                          model_topology={}, nodes=nodes, functions=[], signature=sig, weights=weights,
                          weight_specs=[], user_defined_metadata=None, model_initializer=None,
                          initializer_signature=None)


def _rng(seed):
    return np.random.default_rng(seed)


def _w(seed, shape, low=-1.0, high=1.0):
    return _rng(seed).uniform(low, high, shape).astype(np.float32)


def _pair(device, nodes, weights, outputs=None):
    """(unoptimized, optimized) models of the same artifacts."""
    art = _art(nodes, weights, outputs)
    return GraphModel(art, device, optimize=False), GraphModel(art, device, optimize=True)


def _check(device, nodes, weights, feeds, outputs, tol, outputs_sig=None):
    """Runs both; compares every output; returns (dispatches unoptimized, optimized, optimized model)."""
    base, opt = _pair(device, nodes, weights, outputs_sig)
    want = base.execute(feeds, outputs)
    got = opt.execute(feeds, outputs)
    for o, g, w in zip(outputs, got, want):
        assert_close(g, w, tol, f"{o} on {device.backend}", per="tensor")
    n0 = base.prepare(feeds, outputs)[0].dispatches
    n1 = opt.prepare(feeds, outputs)[0].dispatches
    return n0, n1, opt


def _ops(model) -> list[str]:
    return sorted(n.op for n in model.graph.nodes.values())


def _conv_graph(tail, conv="Conv2D", cout=8):
    """x -> conv (3x3, SAME) -> tail nodes; weights for the conv."""
    f_shape = (3, 3, 4, cout) if conv == "Conv2D" else (3, 3, 4, cout // 4)
    nodes = [X(), C("f"), N("conv", conv, ["x", "f"], strides=[1, 1, 1, 1], padding="SAME")] + tail
    return nodes, {"f": _w(1, f_shape)}


FEEDS = {"x": _w(2, (2, 6, 7, 4), -2, 2)}


# ------------------------------------------------------------------- fold_affine (Mul, Add, BN)
@pytest.mark.parametrize("conv", ["Conv2D", "DepthwiseConv2dNative"])
def test_scale_and_offset_fold_into_the_conv(device, conv):
    tail = [C("s"), N("mul", "Mul", ["conv", "s"]), C("b"), N("add", "AddV2", ["b", "mul"]),
            C("c"), N("sub", "Sub", ["add", "c"]), N("out", "Relu6", ["sub"])]
    nodes, w = _conv_graph(tail, conv)
    w.update(s=_w(3, (8,), 0.5, 2), b=_w(4, (1, 1, 1, 8)), c=np.array(0.25, np.float32))
    n0, n1, opt = _check(device, nodes, w, FEEDS, ["out:0"], FOLDED)
    assert n0 - n1 == 4 and n1 == (1 if conv == "Conv2D" else 2), (n0, n1)     # (+ the multiplier's copy)
    fused = opt.graph.nodes["out"]
    assert fused.op == ("_FusedConv2D" if conv == "Conv2D" else "FusedDepthwiseConv2dNative")
    assert fused.attrs["fused_ops"] == ["BiasAdd", "Relu6"]


def test_batch_norm_folds_and_matmul_transposed_filter(device):
    nodes = [X(shape=(-1, 6, 7, 4)), C("f"), N("dw", "DepthwiseConv2dNative", ["x", "f"], strides=[1, 1, 1, 1],
                                                   padding="VALID"),
             C("g"), C("beta"), C("m"), C("v"),
             N("bn", "FusedBatchNormV3", ["dw", "g", "beta", "m", "v"], epsilon=1e-3, is_training=False),
             N("relu", "Relu", ["bn"]),
             X("y", (-1, 5)), C("wt"), N("mm", "MatMul", ["y", "wt"], transpose_b=True), C("bias"),
             N("ba", "BiasAdd", ["mm", "bias"]), C("k"), N("scaled", "Mul", ["k", "ba"])]
    w = {"f": _w(1, (3, 3, 4, 2)), "g": _w(2, (8,)), "beta": _w(3, (8,)), "m": _w(4, (8,)),
         "v": _w(5, (8,), 0.1, 2), "wt": _w(6, (3, 5)), "bias": _w(7, (3,)), "k": _w(8, (3,))}
    feeds = {**FEEDS, "y": _w(9, (4, 5))}
    n0, n1, opt = _check(device, nodes, w, feeds, ["relu:0", "scaled:0"], FOLDED)
    assert n0 - n1 == 4, (n0, n1)      # batch norm, Relu, BiasAdd, Mul (the repacking copies stay)
    assert opt.graph.nodes["scaled"].op == "_FusedMatMul"


def test_what_must_not_fold_stays(device):
    """A scale that varies along a spatial dim, a conv read twice, Sub(const, conv), a batch norm
    in training mode: all kept (and the results still equal)."""
    tail = [C("s"), N("mul", "Mul", ["conv", "s"]), N("out", "Relu", ["mul"]),
            N("conv2", "Conv2D", ["x", "f"], strides=[1, 1, 1, 1], padding="SAME"), C("b"),
            N("twice", "AddV2", ["conv2", "b"]), N("other", "Relu", ["conv2"]),
            N("conv3", "Conv2D", ["x", "f"], strides=[1, 1, 1, 1], padding="SAME"),
            N("rsub", "Sub", ["b", "conv3"])]
    nodes, w = _conv_graph(tail)
    w.update(s=_w(3, (7, 8)), b=_w(4, (8,)))
    outs = ["out:0", "twice:0", "other:0", "rsub:0"]
    _, _, opt = _check(device, nodes, w, FEEDS, outs, EXACT_ORDER)
    assert opt.graph.nodes["mul"].op == "Mul" and opt.graph.nodes["twice"].op == "AddV2"
    assert opt.graph.nodes["rsub"].op == "Sub"


# --------------------------------------------------------------------------- fuse_activation
@pytest.mark.parametrize("act, attrs, extra", [("LeakyRelu", {"alpha": 0.1}, None), ("Elu", {}, None),
                                                ("Prelu", {}, (8,)), ("Sigmoid", {}, None)])
def test_activation_fuses_into_conv_and_matmul(device, act, attrs, extra):
    tail = [C("b"), N("ba", "BiasAdd", ["conv", "b"])]
    tail.append(N("out", act, ["ba", "alpha"] if extra else ["ba"], **attrs))
    nodes, w = _conv_graph(tail + ([C("alpha")] if extra else []))
    w.update(b=_w(4, (8,)))
    if extra:
        w["alpha"] = _w(5, extra)
    n0, n1, opt = _check(device, nodes, w, FEEDS, ["out:0"], FOLDED)
    assert (n0, n1) == (3, 1) and opt.graph.nodes["out"].attrs["fused_ops"] == ["BiasAdd", act]


# ----------------------------------------------------------------------------- fuse_residual
def test_residual_adds_fuse_keras3_style(device):
    """Keras 3 after Grappler: conv * s, + the residual (AddN), + the offset (AddV2, reassociated),
    then a Relu; and a plain conv + residual (AddV2, residual first)."""
    tail = [C("s"), N("mul", "Mul", ["conv", "s"]), X("r", (-1, 6, 7, 8)), N("sum", "AddN", ["r", "mul"]),
            C("b"), N("add", "AddV2", ["b", "sum"]), N("out", "Relu", ["add"]),
            N("conv2", "Conv2D", ["x", "f"], strides=[1, 1, 1, 1], padding="SAME"),
            N("res2", "AddV2", ["r", "conv2"])]
    nodes, w = _conv_graph(tail)
    w.update(s=_w(3, (8,), 0.5, 2), b=_w(4, (8,)))
    feeds = {**FEEDS, "r": _w(6, (2, 6, 7, 8), -3, 3)}
    n0, n1, opt = _check(device, nodes, w, feeds, ["out:0", "res2:0"], FOLDED)
    assert (n0, n1) == (7, 2), (n0, n1)
    assert opt.graph.nodes["out"].attrs["fused_ops"] == ["BiasAdd", "Add", "Relu"]
    assert opt.graph.nodes["res2"].attrs["fused_ops"] == ["BiasAdd", "Add"]


def test_residual_into_matmul_and_nan_propagates(device):
    nodes = [X("a", (-1, 8)), C("wm"), N("mm", "MatMul", ["a", "wm"]), X("r", (-1, 8)),
             N("res", "AddV2", ["mm", "r"]), N("out", "Relu6", ["res"])]
    w = {"wm": _w(1, (8, 8))}
    r = _w(2, (3, 8), -8, 8)
    r[1, 2] = np.nan
    feeds = {"a": _w(3, (3, 8)), "r": r}
    n0, n1, opt = _check(device, nodes, w, feeds, ["out:0"], EXACT_ORDER)
    assert (n0, n1) == (3, 1)
    y = opt.execute(feeds, "out:0")
    assert np.isnan(y[1, 2]) and np.isnan(y).sum() == 1      # Relu6(NaN) is NaN, as in TF


# --------------------------------------------------------------------------- fuse_elementwise
def test_elementwise_chains_become_one_kernel(device):
    nodes = [X("x", (-1, 5, 8)), C("s"), C("b"), N("mul", "Mul", ["x", "s"]), N("add", "AddV2", ["mul", "b"]),
             N("r6", "Relu6", ["add"]),
             X("y", (-1, 1, 8)), C("m"), N("sub", "Sub", ["y", "m"]), N("sm", "Mul", ["sub", "x"]),
             N("addn", "AddN", ["x", "x", "r6"])]
    w = {"s": _w(1, (8,)), "b": _w(2, (8,)), "m": _w(3, (5, 1))}
    x = _w(4, (2, 5, 8), -9, 9)
    x[0, 0, :2] = np.nan
    feeds = {"x": x, "y": _w(5, (2, 1, 8))}
    n0, n1, opt = _check(device, nodes, w, feeds, ["sm:0", "addn:0"], EXACT_ORDER)
    assert n0 == 7 and n1 == 2, (n0, n1)    # AddN of 3: two additions
    assert opt.graph.nodes["addn"].op == "_FusedElementwise"
    steps = [s[0] for s in opt.graph.nodes["addn"].attrs["steps"]]
    assert steps == ["Mul", "AddV2", "Relu6", "AddV2", "AddV2"], steps


# ----------------------------------------------------------------------------- fold_constants
def test_constants_fold_at_load_within_the_size_cap():
    nodes = [X(), C("a"), C("b"), N("ab", "Mul", ["a", "b"]), N("neg", "Neg", ["ab"]),
             N("out", "AddV2", ["x", "neg"]), C("reps"), N("big", "Tile", ["a", "reps"], Tmultiples="int32"),
             N("out2", "AddV2", ["x", "big"])]
    w = {"a": _w(1, (4,)), "b": _w(2, (4,)), "reps": np.array([5 << 20], np.int32)}     # 80 MiB tiled
    nodes2, w2 = optimize.apply(nodes, w)
    by = {n.name: n for n in nodes2}
    assert by["neg"].op == "Const" and by["big"].op == "Tile"
    np.testing.assert_array_equal(w2["neg"], -(w["a"] * w["b"]))
    assert set(w) <= set(w2) and w2 is not w
    # v1 control flow is frames, not values; a Const under a control edge stays where it is
    loop = [C("c"), N("enter", "Enter", ["c"], frame_name="f", is_constant=True), N("sq", "Square", ["enter"]),
            N("pivot", "NoOp"), N("k", "Const", ["^pivot"], dtype=F), N("neg2", "Neg", ["k"])]
    by = {n.name: n.op for n in optimize.apply(loop, {"c": w["a"], "k": w["b"]})[0]}
    assert by["enter"] == "Enter" and by["neg2"] == "Neg"


# --------------------------------------------------------------- what the optimizer must keep
def test_intermediates_signature_outputs_and_control_edges(device):
    tail = [C("s"), N("mul", "Mul", ["conv", "s"]), N("relu", "Relu", ["mul"]), N("noop", "NoOp"),
            N("out", "Tanh", ["relu", "^noop"])]
    nodes, w = _conv_graph(tail)
    w["s"] = _w(3, (8,))
    base, opt = _pair(device, nodes, w, outputs=["out", "mul"])     # a signature output inside the chain
    assert opt.graph.nodes["mul"].op == "_FusedConv2D"              # conv * s folded, not further
    assert opt.graph.nodes["out"].inputs[-1] == "^noop"
    for name in ("conv:0", "mul:0", "relu:0", "out:0"):             # intermediates asked for by name
        assert_close(opt.execute(FEEDS, name), base.execute(FEEDS, name), FOLDED, name, per="tensor")
    # the loaded artifacts are as the file has them
    assert [n.op for n in opt.artifacts.nodes] == [n.op for n in nodes] and opt.artifacts.weights is w
    assert "mul/filter/optimized" not in w


def test_switches_and_robustness(device, monkeypatch):
    tail = [C("s"), N("mul", "Mul", ["conv", "s"])]
    nodes, w = _conv_graph(tail)
    w["s"] = np.array(["not", "numbers"], dtype=object)      # never folded, never raises
    nodes2, _ = optimize.apply(nodes, w)
    assert {n.name: n.op for n in nodes2}["mul"] == "Mul"
    w["s"] = _w(3, (8,))
    monkeypatch.setenv("WGPU_RUNTIME_OPTIMIZE", "0")
    assert GraphModel(_art(nodes, w), device).graph.nodes["mul"].op == "Mul"
    monkeypatch.setenv("WGPU_RUNTIME_OPTIMIZE", "1")
    assert GraphModel(_art(nodes, w), device).graph.nodes["mul"].op == "_FusedConv2D"
    assert GraphModel(_art(nodes, w), device, optimize=False).graph.nodes["mul"].op == "Mul"

    def broken(work):
        raise RuntimeError("a rewrite's bug")
    monkeypatch.setattr(optimize, "REWRITES", [broken, *optimize.REWRITES])
    assert {n.name: n.op for n in optimize.apply(nodes, w)[0]}["mul"] == "_FusedConv2D"


# ------------------------------------------------------------------------------- real models
KERAS3_VERSION = "keras3-mobilenet-v2-official-1"
_BUILD = """
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {tests!r})
from fixtures.convert_sources import mobilenet_v2_sources
from tensorflowjs.converters import tf_saved_model_conversion_v2 as v2
work, out = Path({work!r}), Path({out!r})
s = mobilenet_v2_sources(work)["keras3_saved_model"]
v2.convert_tf_saved_model(str(s.path), str(out))
np.savez(out / "io.npz", **{{"in:image": s.feeds["image"], "out:output_0": s.ref["output_0"]}})
"""


def keras3_mobilenet_v2() -> Path:
    """Keras 3 MobileNetV2 (128x128, alpha 0.35, seeded: tests/fixtures/convert_sources.py) exported
    as a SavedModel and converted by the OFFICIAL converter (batch norms left as Mul / AddV2 /
    AddN); cached under .fixtures like the other fixtures."""
    folder = cache.cache_root("keras3_mobilenet_v2_official")
    if cache.is_complete(folder, KERAS3_VERSION):
        return folder
    with cache.build_lock(folder.parent / ".keras3_mobilenet_v2_official"):
        if not cache.is_complete(folder, KERAS3_VERSION):
            scratch = folder.with_name(folder.name + ".building")
            subprocess.run(["rm", "-rf", str(scratch)], check=True)
            code = _BUILD.format(tests=str(Path(__file__).parent), work=str(scratch / "src"), out=str(scratch / "m"))
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
            r = subprocess.run([cache.builder_python(), "-c", code], env=env, capture_output=True, text=True)
            if r.returncode:
                raise cache.FixtureUnavailable(f"building the Keras 3 MobileNetV2 fixture failed:\n{r.stderr[-3000:]}")
            subprocess.run(["rm", "-rf", str(folder)], check=True)
            (scratch / "m").rename(folder)
            subprocess.run(["rm", "-rf", str(scratch)], check=True)
            (folder / cache.COMPLETE).write_text(KERAS3_VERSION)
    return folder


def _io(folder: Path):
    with np.load(folder / "io.npz") as d:
        return ({k[3:]: d[k] for k in d.files if k.startswith("in:")},
                {k[4:]: d[k] for k in d.files if k.startswith("out:")})


@pytest.mark.parametrize("which", ["tf_keras", "keras3_official"])
def test_mobilenet_v2_conversions(device, which):
    if which == "tf_keras":
        folder = fixture_path("mobilenet_v2")
        feeds, want = load_io("mobilenet_v2")
    else:
        folder = keras3_mobilenet_v2()
        feeds, want = _io(folder)
    art = load_artifacts(folder)
    base, opt = GraphModel(art, device, optimize=False), GraphModel(art, device, optimize=True)
    [key] = want
    y0, y1 = base.execute(feeds, [key])[0], opt.execute(feeds, [key])[0]
    np.testing.assert_allclose(y1, want[key], atol=MOBILENET_ATOL, rtol=0, err_msg=f"{which} vs TF")
    assert_close(y1, y0, FP32_DEEP, f"{which}: optimized vs as converted", per="tensor")
    n0 = base.prepare(feeds, [key])[0].dispatches
    n1 = opt.prepare(feeds, [key])[0].dispatches
    ops = {s.op for s in opt.prepare(feeds, [key])[0].steps}
    print(f"{which}: {n0} dispatches as converted, {n1} optimized")
    assert n1 <= 67 and n1 < n0, (n0, n1)
    assert not ops & {"Mul", "AddV2", "AddN", "Relu6", "Pad"}, ops     # all folded or fused
    if which == "keras3_official":
        assert n0 >= 126


def test_info_shows_dispatches_before_and_after(tmp_path):
    folder = fixture_path("mobilenet_v2")
    r = subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", "info", str(folder), "--json", "--adapter", "vulkan"],
                       capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": "/tmp/xdg-runtime-0"})
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["dispatches_optimized"] < info["dispatches_unoptimized"]
