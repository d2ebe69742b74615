"""wgpu_runtime.format: model.json / weight shards, read and write.

Edge cases use hand-built files; bit-exactness of quantization and of the writer is checked
against the official converter (tensorflowjs 4.22, its python quantization and write_weights).
"""

import base64
import fnmatch
import json
import math
import os

import numpy as np
import pytest

from wgpu_runtime.dtypes import from_tf
from wgpu_runtime.errors import ModelFormatError
from wgpu_runtime.format import (ModelArtifacts, NodeDef, Signature, TensorSpec, decode_attr, decode_attrs,
                                 decode_weights, dequantize, encode_weights, load_artifacts, quantize_weight,
                                 write_artifacts)
from wgpu_runtime.format import artifacts as artifacts_module

# tensorflow_decision_forests (imported by tensorflowjs) imports IPython when stdout is captured
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def write_model(folder, model, shards=(), name="model.json"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(model))
    for shard, data in dict(shards).items():
        (folder / shard).write_bytes(data)
    return folder / name


def graph_model(manifest, **extra):
    return {"format": "graph-model", "modelTopology": {"node": []}, "weightsManifest": manifest, **extra}


def strings_bytes(values):
    return b"".join(len(v).to_bytes(4, "little") + v for v in values)


def split(data: bytes, size: int):
    return [data[i:i + size] for i in range(0, len(data), size)]


# ---------------------------------------------------------------- attrs

@pytest.mark.parametrize("raw, expected", [
    ({"type": "DT_FLOAT"}, "float32"),
    ({"type": "DT_INT32"}, "int32"),
    ({"type": "DT_INT64"}, "int64"),
    ({"type": "DT_DOUBLE"}, "float64"),
    ({"type": "DT_HALF"}, "float16"),
    ({"type": "DT_BOOL"}, "bool"),
    ({"type": "DT_STRING"}, "string"),
    ({"type": "DT_UINT8"}, "uint8"),
    ({"type": "DT_COMPLEX64"}, "complex64"),
    ({"type": "DT_FLOAT_REF"}, "float32"),
    ({"type": "DT_RESOURCE"}, "resource"),
    ({"type": "DT_INVALID"}, None),
    ({"type": 3}, "int32"),
    ({"b": True}, True),
    ({"b": False}, False),
    ({"f": 0.5}, 0.5),
    ({"f": 2}, 2.0),
    ({"f": "Infinity"}, math.inf),
    ({"f": "-Infinity"}, -math.inf),
    ({"i": "1"}, 1),
    ({"i": "-9223372036854775808"}, -2 ** 63),
    ({"i": 7}, 7),
    ({"s": b64(b"SAME")}, "SAME"),
    ({"s": b64("żółw".encode())}, "żółw"),
    ({"s": b64(b"\xff\xfe\x00")}, b"\xff\xfe\x00"),
    ({"s": base64.urlsafe_b64encode(b"\xfb\xff").decode().rstrip("=")}, b"\xfb\xff"),
    ({"s": ""}, ""),
    ({"list": {}}, []),
    ({"list": {"i": ["1", "2", "2", "1"]}}, [1, 2, 2, 1]),
    ({"list": {"s": [b64(b"BiasAdd"), b64(b"Relu")]}}, ["BiasAdd", "Relu"]),
    ({"list": {"b": [True, False]}}, [True, False]),
    ({"list": {"type": ["DT_FLOAT", "DT_INT32"]}}, ["float32", "int32"]),
    ({"list": {"shape": [{"dim": [{"size": "2"}]}, {"unknownRank": True}, {}]}}, [(2,), None, ()]),
    ({"list": {"func": [{"name": "cond"}, {"name": "body"}]}}, ["cond", "body"]),
    ({"shape": {"dim": [{"size": "-1"}, {"size": "224"}, {}, {"size": 3}]}}, (-1, 224, 0, 3)),
    ({"shape": {}}, ()),
    ({"shape": {"unknownRank": True}}, None),
    ({"func": {"name": "while_body_12"}}, "while_body_12"),
    ({"tensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]}}},
     {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]}}),
    ({}, None),
])
def test_decode_attr(raw, expected):
    value = decode_attr(raw)
    assert value == expected
    assert type(value) is type(expected)


def test_decode_attr_nan():
    assert math.isnan(decode_attr({"f": "NaN"}))
    first, second = decode_attr({"list": {"f": [0.5, "NaN"]}})
    assert first == 0.5 and math.isnan(second)


@pytest.mark.parametrize("raw, match", [
    ({"x": 1}, "unknown attr encoding 'x'"),
    ({"i": "1.5"}, "integer"),
    ({"b": "true"}, "boolean"),
    ({"f": "fast"}, "float"),
    ({"s": "a"}, "base64"),
    ({"list": {"i": ["1"], "f": [1.0]}}, "mixes"),
    ({"list": {"q": []}}, "unknown attr list encoding"),
    ({"i": "1", "f": 1.0}, "exactly one field"),
])
def test_decode_attr_errors(raw, match):
    with pytest.raises(ModelFormatError, match=match):
        decode_attr(raw)


def test_decode_attrs_names_node_and_attr():
    assert decode_attrs({"T": {"type": "DT_FLOAT"}, "N": {"i": "2"}}) == {"T": "float32", "N": 2}
    with pytest.raises(ModelFormatError, match=r"node 'conv' \(Conv2D\): attr 'strides'"):
        decode_attrs({"strides": {"list": {"i": ["x"]}}}, "node 'conv' (Conv2D)")


def test_attrs_as_tensorflow_writes_them():
    """The converter writes attrs with protobuf's MessageToDict: decode exactly those."""
    pytest.importorskip("tensorflow")
    from google.protobuf.json_format import MessageToDict
    from tensorflow.core.framework import attr_value_pb2 as A, tensor_pb2, tensor_shape_pb2 as S, types_pb2 as T
    dims = S.TensorShapeProto(dim=[S.TensorShapeProto.Dim(size=-1), S.TensorShapeProto.Dim(size=0),
                                   S.TensorShapeProto.Dim(size=5)])
    tensor = tensor_pb2.TensorProto(dtype=T.DT_FLOAT, tensor_shape=dims)
    cases = [
        (A.AttrValue(type=T.DT_HALF), "float16"),
        (A.AttrValue(type=T.DT_INVALID), None),
        (A.AttrValue(b=False), False),
        (A.AttrValue(f=-0.375), -0.375),
        (A.AttrValue(i=0), 0),
        (A.AttrValue(i=-(2 ** 40)), -(2 ** 40)),
        (A.AttrValue(s=b"NHWC"), "NHWC"),
        (A.AttrValue(s=b"\x80\x81"), b"\x80\x81"),
        (A.AttrValue(s=b""), ""),
        (A.AttrValue(shape=dims), (-1, 0, 5)),
        (A.AttrValue(shape=S.TensorShapeProto()), ()),
        (A.AttrValue(shape=S.TensorShapeProto(unknown_rank=True)), None),
        (A.AttrValue(func=A.NameAttrList(name="f_1")), "f_1"),
        (A.AttrValue(tensor=tensor), MessageToDict(tensor)),
        (A.AttrValue(list=A.AttrValue.ListValue()), []),
        (A.AttrValue(list=A.AttrValue.ListValue(i=[1, 0, -1])), [1, 0, -1]),
        (A.AttrValue(list=A.AttrValue.ListValue(f=[1.5, 0.0])), [1.5, 0.0]),
        (A.AttrValue(list=A.AttrValue.ListValue(s=[b"BiasAdd", b"Relu6"])), ["BiasAdd", "Relu6"]),
        (A.AttrValue(list=A.AttrValue.ListValue(b=[False, True])), [False, True]),
        (A.AttrValue(list=A.AttrValue.ListValue(type=[T.DT_INT64, T.DT_BOOL])), ["int64", "bool"]),
        (A.AttrValue(list=A.AttrValue.ListValue(shape=[dims, S.TensorShapeProto()])), [(-1, 0, 5), ()]),
        (A.AttrValue(list=A.AttrValue.ListValue(func=[A.NameAttrList(name="g")])), ["g"]),
        (A.AttrValue(), None),
    ]
    for message, expected in cases:
        assert decode_attr(MessageToDict(message)) == expected, message
    # every DataType name and its enum number decode alike
    for name, number in T.DataType.items():
        assert from_tf(name) == from_tf(number)


# ---------------------------------------------------------------- loading

def test_graph_model_everything(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    b = np.array([1, -2, 3, 2 ** 31 - 1, -2 ** 31], np.int32)
    c = np.array([True, False, True])
    d = np.array([[0, 7], [255, 128]], np.uint8)
    group1 = a.tobytes() + b.tobytes() + c.astype(np.uint8).tobytes() + d.tobytes()   # 51 bytes
    strs = [b"hello", b"", "żółw".encode(), b"\xff\x00"]
    e = np.array([1.5, -65504, 6e-8], np.float16)
    f = np.array([2 ** 40, -1], np.int64)
    g = np.array([1 / 3, -1e300], np.float64)
    h = np.array([1 + 2j, -3.5j], np.complex64)
    group2 = (strings_bytes(strs) + e.tobytes() + f.tobytes() + g.tobytes() + h.tobytes()
              + np.float32(4.25).tobytes())
    shards1 = split(group1, 10)           # 6 shards; every weight but 'c' straddles a boundary
    shards2 = split(group2, 7)
    manifest = [
        {"paths": [f"group1-shard{i + 1}of6.bin" for i in range(6)], "weights": [
            {"name": "a", "shape": [2, 3], "dtype": "float32"},
            {"name": "b", "shape": [5], "dtype": "int32"},
            {"name": "c", "shape": [3], "dtype": "bool"},
            {"name": "d", "shape": [2, 2], "dtype": "uint8"}]},
        {"paths": [f"w/group2-shard{i + 1}.bin" for i in range(len(shards2))], "weights": [
            {"name": "s", "shape": [2, 2], "dtype": "string"},
            {"name": "empty_s", "shape": [0], "dtype": "string"},
            {"name": "e", "shape": [3], "dtype": "float16"},
            {"name": "f", "shape": [2], "dtype": "int64"},
            {"name": "g", "shape": [2], "dtype": "float64"},
            {"name": "h", "shape": [2], "dtype": "complex64"},
            {"name": "empty", "shape": [0, 3], "dtype": "float32"},
            {"name": "scalar", "shape": [], "dtype": "float32"}]},
    ]
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"},
                                                    "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "3"}]}}}},
        {"name": "a", "op": "Const", "attr": {"value": {"tensor": {"dtype": "DT_FLOAT"}}, "dtype": {"type": "DT_FLOAT"}}},
        {"name": "split", "op": "Split", "input": ["dim", "x"], "attr": {"num_split": {"i": "2"}, "T": {}}},
        {"name": "out", "op": "AddV2", "input": ["split:1", "a", "^init"], "device": "/device:CPU:0"},
    ]
    function = {"signature": {"name": "body"}, "nodeDef": []}
    model = {
        "format": "graph-model", "generatedBy": "2.19.0", "convertedBy": "TensorFlow.js Converter v4.22.0",
        "signature": {"inputs": {"x": {"name": "x:0", "dtype": "DT_FLOAT",
                                       "tensorShape": {"dim": [{"size": "-1"}, {"size": "3"}]}}},
                      "outputs": {"out": {"name": "out:0", "dtype": "DT_FLOAT", "tensorShape": {"unknownRank": True}},
                                  "n": {"name": "n:0", "dtype": "DT_INT64", "tensorShape": {}},
                                  "r": {"name": "r:0", "dtype": "DT_RESOURCE"}}},
        "modelTopology": {"node": nodes, "library": {"function": [function]}, "versions": {"producer": 1882}},
        "modelInitializer": {"node": [{"name": "init", "op": "NoOp"}]},
        "initializerSignature": {"outputs": {"t": {"name": "t:0", "dtype": "DT_RESOURCE"}}},
        "userDefinedMetadata": {"labels": ["cat", "dog"]},
        "weightsManifest": manifest,
    }
    shards = {p: s for p, s in zip(manifest[0]["paths"], shards1)}
    (tmp_path / "m" / "w").mkdir(parents=True)
    shards.update((p, s) for p, s in zip(manifest[1]["paths"], shards2))
    path = write_model(tmp_path / "m", model, shards, name="my-model.json")

    art = load_artifacts(path)
    assert isinstance(art, ModelArtifacts)
    assert art.path == path and art.format == "graph-model"
    assert (art.generated_by, art.converted_by) == ("2.19.0", "TensorFlow.js Converter v4.22.0")
    assert art.model_topology == model["modelTopology"]
    assert art.functions == [function]
    assert art.nodes[0] == NodeDef("x", "Placeholder", [], {"dtype": "float32", "shape": (-1, 3)})
    assert art.nodes[1].attrs == {"value": {"dtype": "DT_FLOAT"}, "dtype": "float32"}
    assert art.nodes[2] == NodeDef("split", "Split", ["dim", "x"], {"num_split": 2, "T": None})
    assert art.nodes[3] == NodeDef("out", "AddV2", ["split:1", "a", "^init"], {}, "/device:CPU:0")
    assert art.signature == Signature(
        inputs={"x": TensorSpec("x:0", "float32", (-1, 3))},
        outputs={"out": TensorSpec("out:0", "float32", None), "n": TensorSpec("n:0", "int64", ()),
                 "r": TensorSpec("r:0", "resource", None)})
    assert art.model_initializer == model["modelInitializer"]
    assert art.initializer_signature == Signature({}, {"t": TensorSpec("t:0", "resource", None)})
    assert art.user_defined_metadata == {"labels": ["cat", "dog"]}
    assert art.weight_specs == manifest[0]["weights"] + manifest[1]["weights"]

    w = art.weights
    assert list(w) == [s["name"] for s in art.weight_specs]
    for name, want in dict(a=a, b=b, c=c, d=d, e=e, f=f, g=g, h=h).items():
        assert w[name].dtype == want.dtype and w[name].shape == want.shape, name
        np.testing.assert_array_equal(w[name], want, err_msg=name)
    assert w["s"].dtype == object and w["s"].shape == (2, 2)
    assert w["s"].tolist() == [["hello", ""], ["żółw", b"\xff\x00"]]
    assert w["empty_s"].shape == (0,) and w["empty"].shape == (0, 3)
    assert w["scalar"].shape == () and w["scalar"] == np.float32(4.25)
    assert all(v.flags.writeable for v in w.values())


def test_layers_model_without_format_and_folder_path(tmp_path):
    kernel = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    model = {"modelTopology": {"keras_version": "2.19.0", "backend": "tensorflow",
                               "model_config": {"class_name": "Sequential", "config": {"layers": []}}},
             "weightsManifest": [{"paths": ["group1-shard1of1.bin"],
                                  "weights": [{"name": "dense/kernel", "shape": [3, 4], "dtype": "float32"}]}]}
    write_model(tmp_path, model, {"group1-shard1of1.bin": kernel.tobytes()})
    art = load_artifacts(tmp_path)
    assert art.format == "layers-model" and art.path == tmp_path / "model.json"
    assert art.nodes == [] and art.functions == [] and art.signature is None
    assert art.generated_by is None and art.user_defined_metadata is None and art.model_initializer is None
    np.testing.assert_array_equal(art.weights["dense/kernel"], kernel)


def test_model_without_weights(tmp_path):
    art = load_artifacts(write_model(tmp_path, {"format": "graph-model", "modelTopology": {}}))
    assert art.weights == {} and art.weight_specs == [] and art.nodes == []


def test_symlink_inside_folder_is_allowed(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "real.bin").write_bytes(np.float32(3).tobytes())
    (tmp_path / "link.bin").symlink_to(tmp_path / "store" / "real.bin")
    path = write_model(tmp_path, graph_model([{"paths": ["link.bin"],
                                                "weights": [{"name": "w", "shape": [], "dtype": "float32"}]}]))
    assert load_artifacts(path).weights["w"] == 3


# ---------------------------------------------------------------- dequantization (as TF.js)

def test_dequantize_uint8_uint16_float16_and_old_manifest(tmp_path):
    q8 = np.array([0, 1, 128, 255], np.uint8)
    q16 = np.array([0, 40000, 65535], np.uint16)
    h = np.array([0.1, -2, 65504], np.float16)
    manifest = [{"paths": ["g.bin"], "weights": [
        {"name": "u8", "shape": [2, 2], "dtype": "float32",
         "quantization": {"dtype": "uint8", "min": -1.0, "scale": 0.1, "original_dtype": "float32"}},
        {"name": "u16", "shape": [3], "dtype": "float32",        # older manifests: no original_dtype
         "quantization": {"dtype": "uint16", "min": -0.3, "scale": 1e-5}},
        {"name": "h", "shape": [3], "dtype": "float32",
         "quantization": {"dtype": "float16", "original_dtype": "float32"}}]}]
    path = write_model(tmp_path, graph_model(manifest), {"g.bin": q8.tobytes() + q16.tobytes() + h.tobytes()})
    w = load_artifacts(path).weights
    assert w["u8"].dtype == np.float32 and w["u8"].shape == (2, 2)
    np.testing.assert_array_equal(w["u8"].ravel(), np.array([q * 0.1 + -1.0 for q in q8.tolist()], np.float32))
    np.testing.assert_array_equal(w["u16"], np.array([q * 1e-5 + -0.3 for q in q16.tolist()], np.float32))
    np.testing.assert_array_equal(w["h"], h.astype(np.float32))


def test_dequantize_int32_rounds_like_math_round(tmp_path):
    """TF.js: Math.round(q*scale + min), halves toward +infinity (numpy would round to even)."""
    q = np.arange(6, dtype=np.uint8)        # -> -1.5, -1, -0.5, 0, 0.5, 1
    manifest = [{"paths": ["g.bin"], "weights": [{"name": "i", "shape": [6], "dtype": "int32",
                                                  "quantization": {"dtype": "uint8", "min": -1.5, "scale": 0.5}}]}]
    w = load_artifacts(write_model(tmp_path, graph_model(manifest), {"g.bin": q.tobytes()})).weights
    assert w["i"].dtype == np.int32
    assert w["i"].tolist() == [-1, -1, 0, 0, 1, 1]


def test_dequantize_is_float64_then_float32():
    x = np.random.default_rng(1).normal(size=4096).astype(np.float32)
    data, quant = quantize_weight(x, "uint16")
    q = np.frombuffer(data, np.uint16)
    got = decode_weights(data, [{"name": "w", "shape": [4096], "dtype": "float32", "quantization": quant}])["w"]
    expected = (q.astype(np.float64) * quant["scale"] + quant["min"]).astype(np.float32)
    single = q.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(dequantize(q, quant), expected)
    assert (got != single).any()   # the float32 formula really differs: this test can tell them apart
    assert np.abs(got - x).max() <= quant["scale"] / 2 + 1e-6


def tfjs_float16_decode(bits: np.ndarray) -> np.ndarray:
    """TF.js getFloat16Decoder (lookup tables after fox-toolkit's fasthalffloatconversion)."""
    def mantissa(i):
        m, e = i << 13, 0
        while not m & 0x00800000:
            e -= 0x00800000
            m <<= 1
        return ((m & ~0x00800000) | (e + 0x38800000)) & 0xFFFFFFFF
    mant = np.array([0] + [mantissa(i) for i in range(1, 1024)]
                    + [0x38000000 + ((i - 1024) << 13) for i in range(1024, 2048)], np.uint64)
    expo = np.array([0] + [i << 23 for i in range(1, 31)] + [0x47800000, 0x80000000]
                    + [0x80000000 + ((i - 32) << 23) for i in range(33, 63)] + [0xC7800000], np.uint64)
    offset = np.full(64, 1024, np.uint64)
    offset[0] = offset[32] = 0
    b = bits.astype(np.uint64)
    return ((mant[offset[b >> 10] + (b & 0x3FF)] + expo[b >> 10]) & 0xFFFFFFFF).astype(np.uint32)


def test_float16_dequantization_matches_tfjs_for_every_bit_pattern():
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    spec = {"name": "h", "shape": [65536], "dtype": "float32", "quantization": {"dtype": "float16"}}
    got = decode_weights(bits.tobytes(), [spec])["h"]
    np.testing.assert_array_equal(got.view(np.uint32), tfjs_float16_decode(bits))


# ---------------------------------------------------------------- quantization (as the converter)

def random_arrays():
    rng = np.random.default_rng(7)
    positive = np.abs(rng.normal(size=300))
    positive[5] = 0.0                       # min exactly 0: the nudged min is -0.0
    return [
        rng.normal(size=(17, 9)),
        rng.uniform(0.5, 3, size=200),      # 0 not in range: no nudge
        -rng.uniform(0.5, 3, size=200),
        positive,
        np.full((4, 4), -0.7),              # all equal
        np.array([0.0]),
        rng.normal(size=1000) * 1e-6,
        rng.normal(size=1000) * 1e6,
        rng.standard_cauchy(size=5000),
    ]


def test_quantize_weight_matches_official_converter():
    Q = pytest.importorskip("tensorflowjs.quantization")
    for x in random_arrays():
        x = x.astype(np.float32)
        for qdtype in ("uint8", "uint16", "float16"):
            with np.errstate(over="ignore"):        # float16: |x| > 65504 becomes inf in both
                data, quant = quantize_weight(x, qdtype)
                ref_q, ref_meta = Q.quantize_weights(x, getattr(np, qdtype))
            ref = {"dtype": qdtype, **ref_meta, "original_dtype": "float32"}   # as write_weights builds it
            assert data == ref_q.tobytes(), (qdtype, x[:4])
            assert json.dumps(quant) == json.dumps(ref)                       # same keys, order, floats, -0.0
            if qdtype != "float16":
                np.testing.assert_array_equal(
                    dequantize(ref_q, quant),
                    (ref_q.astype(np.float64) * quant["scale"] + quant["min"]).astype(np.float32))


def test_quantize_weight_edge_cases():
    data, quant = quantize_weight(np.zeros((0, 3), np.float32), "uint8")
    assert data == b"" and quant == {"dtype": "uint8", "min": 0.0, "scale": 1.0, "original_dtype": "float32"}
    data, quant = quantize_weight(np.array([0.0, 1.0, -1.0], np.float32), "uint8")
    assert 0.0 in dequantize(np.frombuffer(data, np.uint8), quant)      # zero stays exact
    with pytest.raises(ModelFormatError, match="NaN or infinity"):
        quantize_weight(np.array([1.0, np.nan], np.float32), "uint8")
    with pytest.raises(ModelFormatError, match="unknown quantization dtype 'int8'"):
        quantize_weight(np.ones(3, np.float32), "int8")
    with pytest.raises(ModelFormatError, match="only float32"):
        quantize_weight(np.ones(3, np.float64), "uint8")


# ---------------------------------------------------------------- writing

def weight_groups():
    rng = np.random.default_rng(3)
    return [
        [("conv/kernel", rng.normal(size=(3, 3, 2, 4)).astype(np.float32)),
         ("conv/bias", rng.normal(size=4)),                          # float64: written as float32
         ("steps", np.array([2 ** 40 + 5, -3], np.int64)),           # int64: written as int32 (wraps, as official)
         ("mask", np.array([[True, False], [False, True]])),
         ("half", np.array([1.5, -2.25], np.float16)),               # float16: written as float32
         ("bytes", np.array([1, 2, 250], np.uint8))],
        [("vocab", np.array(["a", "żółw", ""], dtype=object)),
         ("c", np.array([1 - 1j, 2j], np.complex128)),
         ("dense/kernel", rng.normal(size=(40, 30)).astype(np.float32)),
         ("flat", np.full(7, 0.25, np.float32)),
         ("ids", np.arange(10, dtype=np.int32))],
    ]


def quantize_map(name):
    """The callable equivalent of {"uint8": ["conv/*"], "float16": ["flat"], "uint16": True}."""
    return "uint8" if fnmatch.fnmatch(name, "conv/*") else "float16" if name == "flat" else "uint16"


def test_write_matches_official_write_weights(tmp_path):
    write_weights = pytest.importorskip("tensorflowjs.write_weights")
    read_weights = pytest.importorskip("tensorflowjs.read_weights")
    official_dir = tmp_path / "official"
    official_dir.mkdir()
    groups = weight_groups()
    ref_manifest = write_weights.write_weights(
        [[{"name": n, "data": a.copy()} for n, a in g] for g in groups], str(official_dir),
        shard_size_bytes=100, write_manifest=False,
        quantization_dtype_map={"uint8": ["conv/*"], "float16": ["flat"], "uint16": True})
    ours = write_artifacts(tmp_path / "ours", {"format": "graph-model", "modelTopology": {"node": []}},
                           groups, shard_size=100, quantize=quantize_map)
    model = json.loads(ours.read_text())
    assert json.dumps(model["weightsManifest"]) == json.dumps(ref_manifest)
    assert model["modelTopology"] == {"node": []} and model["format"] == "graph-model"
    names = sorted(os.listdir(official_dir))
    assert sorted(os.listdir(ours.parent)) == sorted(names + ["model.json"])
    assert len(names) > 4
    for name in names:
        assert (ours.parent / name).read_bytes() == (official_dir / name).read_bytes(), name

    ref = {e["name"]: e["data"] for e in read_weights.read_weights(ref_manifest, str(official_dir), flatten=True)}
    art = load_artifacts(ours)
    assert list(art.weights) == list(ref)
    for name, value in art.weights.items():
        if name == "vocab":
            assert value.tolist() == [s.decode() for s in ref[name].tolist()]
        else:
            assert value.dtype == ref[name].dtype, name
            np.testing.assert_array_equal(value, ref[name], err_msg=name)


def test_write_then_load_round_trip(tmp_path):
    groups = weight_groups()
    path = write_artifacts(tmp_path / "out", {"format": "layers-model", "modelTopology": {"model_config": {}}},
                           groups, shard_size=64)
    art = load_artifacts(tmp_path / "out")
    assert art.path == path and art.format == "layers-model"
    for name, array in (x for g in groups for x in g):
        got = art.weights[name]
        if name == "vocab":
            assert got.tolist() == array.tolist()
        else:
            np.testing.assert_array_equal(got, array.astype(got.dtype), err_msg=name)
    assert art.weights["steps"].tolist() == [5, -3]
    assert {s["name"]: s["dtype"] for s in art.weight_specs} == {
        "conv/kernel": "float32", "conv/bias": "float32", "steps": "int32", "mask": "bool", "half": "float32",
        "bytes": "uint8", "vocab": "string", "c": "complex64", "dense/kernel": "float32", "flat": "float32",
        "ids": "int32"}


def test_write_default_shard_size_and_names(tmp_path):
    big = np.zeros(4194304 // 4 + 3, np.float32)
    path = write_artifacts(tmp_path / "m", {"format": "graph-model", "modelTopology": {}},
                           [[("big", big)], [], [("s", np.array(3, np.int32))]], model_file="graph.json")
    manifest = json.loads(path.read_text())["weightsManifest"]
    assert path.name == "graph.json"
    assert [g["paths"] for g in manifest] == [["group1-shard1of2.bin", "group1-shard2of2.bin"], [],
                                              ["group3-shard1of1.bin"]]
    assert (path.parent / "group1-shard1of2.bin").stat().st_size == 4194304
    assert (path.parent / "group1-shard2of2.bin").stat().st_size == 12
    assert load_artifacts(path).weights["s"].shape == ()


def test_encode_weights_entries_and_errors():
    data, entries = encode_weights([("a", np.float32([1, 2])), ("s", np.array(["x", "yz"]))],
                                   quantization=lambda n: "uint8")
    assert entries == [{"name": "a", "shape": [2], "dtype": "float32",
                        "quantization": {"dtype": "uint8", "min": 1.0, "scale": 1 / 255, "original_dtype": "float32"}},
                       {"name": "s", "shape": [2], "dtype": "string"}]
    assert data == bytes([0, 255]) + strings_bytes([b"x", b"yz"])
    with pytest.raises(ModelFormatError, match="'u16'.*uint16"):
        encode_weights([("u16", np.ones(2, np.uint16))])
    with pytest.raises(ModelFormatError, match="'a': unknown quantization dtype 'int4'"):
        encode_weights([("a", np.ones(2, np.float32))], quantization=lambda n: "int4")
    with pytest.raises(ModelFormatError, match="duplicate weight name 'a'"):
        write_artifacts("unused", {}, [[("a", np.ones(1))], [("a", np.ones(1))]])


def leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_write_refuses_non_empty_folder_and_overwrites_on_request(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        write_artifacts(out, {"modelTopology": {}}, [[("a", np.ones(1, np.float32))]])
    assert os.listdir(out) == ["keep.txt"]
    write_artifacts(out, {"format": "graph-model", "modelTopology": {}}, [[("a", np.ones(1, np.float32))]],
                    overwrite=True)
    assert sorted(os.listdir(out)) == ["group1-shard1of1.bin", "model.json"]
    assert leftovers(tmp_path) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    write_artifacts(empty, {"format": "graph-model", "modelTopology": {}}, [])
    assert load_artifacts(empty).weights == {}


@pytest.mark.parametrize("existing", [False, True])
def test_write_failure_leaves_nothing_half_written(tmp_path, monkeypatch, existing):
    out = tmp_path / "out"
    if existing:
        write_artifacts(out, {"format": "graph-model", "modelTopology": {}}, [[("old", np.ones(1, np.float32))]])
    before = sorted(os.listdir(out)) if existing else None
    calls = []

    def failing_open(path, mode="r", *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(artifacts_module, "open", failing_open, raising=False)
    with pytest.raises(OSError, match="No space"):
        write_artifacts(out, {"format": "graph-model", "modelTopology": {}},
                        [[("a", np.ones(100, np.float32))]], shard_size=100, overwrite=True)
    assert len(calls) == 2
    assert leftovers(tmp_path) == []
    if existing:
        assert sorted(os.listdir(out)) == before
        assert list(load_artifacts(out).weights) == ["old"]
    else:
        assert not out.exists()


# ---------------------------------------------------------------- errors

def one_weight(path="g.bin", **spec):
    return graph_model([{"paths": [path], "weights": [{"name": "w", "shape": [2], "dtype": "float32", **spec}]}])


def expect_error(path, *fragments):
    with pytest.raises(ModelFormatError) as info:
        load_artifacts(path)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_error_model_file_missing(tmp_path):
    expect_error(tmp_path / "nope.json", str(tmp_path / "nope.json"), "not found")
    expect_error(tmp_path, str(tmp_path / "model.json"), "not found")


def test_error_malformed_json(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{\n  "format": "graph-model",\n  "modelTopology": {,}\n}')
    expect_error(path, str(path), "malformed JSON", "line 3, column 21")
    path.write_bytes(b'{"format": "\xff"}')
    expect_error(path, str(path), "malformed JSON")
    path.write_text("[1, 2]")
    expect_error(path, str(path), "must be an object")


def test_error_required_keys_and_format(tmp_path):
    expect_error(write_model(tmp_path, {"format": "graph-model"}), "model.json", "'modelTopology'")
    expect_error(write_model(tmp_path, {"format": "saved-model", "modelTopology": {}}), "unknown format 'saved-model'")
    expect_error(write_model(tmp_path, {"modelTopology": {"versions": {}}}), "no 'format' key")
    expect_error(write_model(tmp_path, {"format": "graph-model", "modelTopology": {}, "weightsManifest": {}}),
                 "'weightsManifest' must be a list")
    expect_error(write_model(tmp_path, graph_model([{"weights": []}])), "weights group 1", "'paths'")
    expect_error(write_model(tmp_path, {"format": "graph-model", "modelTopology": {"node": [{"name": "n"}]}}),
                 "node 0", "'op'")
    expect_error(write_model(tmp_path, {"format": "graph-model", "modelTopology": {"node": [
        {"name": "c", "op": "Conv2D", "attr": {"padding": {"s": 5}}}]}}), "node 'c' (Conv2D)", "attr 'padding'")


def test_error_shard_missing(tmp_path):
    expect_error(write_model(tmp_path, one_weight()), "model.json", "weights group 1", "'g.bin' not found")


def test_error_shard_truncated(tmp_path):
    manifest = [{"paths": ["s1.bin", "s2.bin"], "weights": [{"name": "a", "shape": [4], "dtype": "float32"},
                                                            {"name": "b", "shape": [2], "dtype": "int32"}]}]
    data = np.zeros(6, np.float32).tobytes()
    path = write_model(tmp_path, graph_model(manifest), {"s1.bin": data[:16], "s2.bin": data[16:20]})
    expect_error(path, "model.json", "s2.bin 4 bytes", "truncated", "weight 'b'", "expected 24 bytes, found 20")
    manifest[0]["weights"].append({"name": "s", "shape": [3], "dtype": "string"})
    path = write_model(tmp_path, graph_model(manifest), {"s1.bin": data[:16], "s2.bin": data[16:24] + b"\5\0\0\0ab"})
    expect_error(path, "weight 's'", "expected at least 33 bytes, found 30")


def test_error_weight_paths_leaving_the_folder(tmp_path):
    model_dir = tmp_path / "model"
    outside = tmp_path / "outside.bin"
    outside.write_bytes(bytes(8))
    expect_error(write_model(model_dir, one_weight("../outside.bin")), "refusing", "'../outside.bin'")
    expect_error(write_model(model_dir, one_weight(str(outside))), "refusing absolute", str(outside))
    (model_dir / "sneaky.bin").symlink_to(outside)
    expect_error(write_model(model_dir, one_weight("sneaky.bin")), "refusing", "'sneaky.bin'", "outside")
    expect_error(write_model(model_dir, one_weight("sub/../../outside.bin")), "refusing")


@pytest.mark.parametrize("spec, fragments", [
    ({"dtype": "float128"}, ["weight 'w'", "unknown dtype 'float128'"]),
    ({"dtype": "int16"}, ["unknown dtype 'int16'"]),
    ({"quantization": {"dtype": "int8", "min": 0, "scale": 1}}, ["weight 'w'", "unknown quantization dtype 'int8'"]),
    ({"quantization": {"dtype": "uint8", "min": 0}}, ["weight 'w'", "'min' and 'scale'"]),
    ({"dtype": "int32", "quantization": {"dtype": "float16"}}, ["float16 quantization is not supported for dtype int32"]),
    ({"dtype": "bool", "quantization": {"dtype": "uint8", "min": 0, "scale": 1}}, ["not supported for dtype bool"]),
    ({"shape": [-1]}, ["'shape'"]),
])
def test_error_weight_specs(tmp_path, spec, fragments):
    expect_error(write_model(tmp_path, one_weight(**spec), {"g.bin": bytes(8)}), "model.json", *fragments)


def test_error_duplicate_weight_names(tmp_path):
    group = {"paths": ["g.bin"], "weights": [{"name": "w", "shape": [], "dtype": "float32"}]}
    expect_error(write_model(tmp_path, graph_model([group, group]), {"g.bin": bytes(4)}),
                 "weights group 2", "duplicate weight name 'w'")


# ---------------------------------------------------------------- issue 13: unsafe or inconsistent files
W8 = np.arange(2, dtype=np.float32).tobytes()


def test_error_model_json_fifo_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "model.json")
    expect_error(tmp_path, "is a FIFO, not a regular file")


def test_error_shard_fifo_does_not_hang(tmp_path):
    path = write_model(tmp_path, one_weight())
    os.mkfifo(tmp_path / "g.bin")
    expect_error(path, "weights group 1", "is a FIFO")


def test_error_model_json_device_is_not_read(tmp_path):
    (tmp_path / "model.json").symlink_to("/dev/zero")
    expect_error(tmp_path, "is a device, not a regular file")


def test_error_model_json_over_the_size_cap_is_not_read(tmp_path):
    from wgpu_runtime.io_utils import MODEL_JSON_MAX_BYTES

    with open(tmp_path / "model.json", "wb") as f:
        f.truncate(MODEL_JSON_MAX_BYTES + 1)          # sparse: nothing written, nothing read
    expect_error(tmp_path, f"{MODEL_JSON_MAX_BYTES + 1} bytes, over the limit of {MODEL_JSON_MAX_BYTES}")


def test_error_json_nested_too_deeply(tmp_path):
    (tmp_path / "model.json").write_text('{"a": ' + "[" * 100000 + "]" * 100000 + "}")
    expect_error(tmp_path, "nested too deeply")


@pytest.mark.parametrize("extra", [1, 4, 100])
def test_error_shard_with_extra_bytes(tmp_path, extra):
    path = write_model(tmp_path, one_weight(), {"g.bin": W8 + bytes(extra)})
    expect_error(path, "the manifest's weights take 8 bytes, the shards hold", str(8 + extra))


def test_error_shards_listed_out_of_order(tmp_path):
    names = ["group1-shard2of2.bin", "group1-shard1of2.bin"]
    model = graph_model([{"paths": names, "weights": [{"name": "w", "shape": [2], "dtype": "float32"}]}])
    path = write_model(tmp_path, model, {names[0]: W8[4:], names[1]: W8[:4]})
    expect_error(path, "shards listed out of order")


def test_shards_of_other_names_in_any_order_still_load(tmp_path):
    model = graph_model([{"paths": ["b.bin", "a.bin"], "weights": [{"name": "w", "shape": [2], "dtype": "float32"}]}])
    path = write_model(tmp_path, model, {"b.bin": W8[:4], "a.bin": W8[4:]})
    np.testing.assert_array_equal(load_artifacts(path).weights["w"], [0, 1])


@pytest.mark.parametrize("field,value", [("scale", float("nan")), ("scale", float("inf")), ("min", float("-inf"))])
def test_error_quantization_not_finite(tmp_path, field, value):
    quant = {"dtype": "uint8", "min": 0.0, "scale": 1.0, field: value}
    path = write_model(tmp_path, one_weight(quantization=quant), {"g.bin": b"\x00\x01"})
    expect_error(path, "needs finite numbers 'min' and 'scale'")


def test_error_float16_weight_declared_uint8_quantized(tmp_path):
    path = write_model(tmp_path, one_weight(dtype="float16", quantization={"dtype": "uint8", "min": 0, "scale": 1}),
                       {"g.bin": b"\x00\x01"})
    expect_error(path, "uint8 quantization is not supported for dtype float16")


@pytest.mark.parametrize("shape", [[2 ** 62, 0], [1] * 1000, [2 ** 31, 1]])
def test_error_weight_shape_out_of_bounds(tmp_path, shape):
    path = write_model(tmp_path, one_weight(shape=shape), {"g.bin": W8})
    expect_error(path, "'shape' must be a list of at most 32 sizes")


@pytest.mark.parametrize("value", ["DT_BOGUS", "DT_FLOAT33"])
def test_error_unknown_tf_dtype(value):
    with pytest.raises(ModelFormatError, match="unknown TensorFlow dtype"):
        from_tf(value)


def test_error_shard_path_with_nul_byte(tmp_path):
    path = write_model(tmp_path, one_weight(path="a\u0000b.bin"))
    expect_error(path, "holds a NUL byte")


def test_error_shard_symlink_loop(tmp_path):
    path = write_model(tmp_path, one_weight())
    (tmp_path / "g.bin").symlink_to("h.bin")
    (tmp_path / "h.bin").symlink_to("g.bin")
    expect_error(path, "weights group 1", "g.bin")


def test_error_shard_symlinked_folder_outside_is_refused_unread(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "g.bin").write_bytes(W8)
    path = write_model(tmp_path / "m", one_weight(path="w/g.bin"))
    (tmp_path / "m" / "w").symlink_to(outside)
    expect_error(path, "leads outside the model folder")


def test_two_weights_of_one_name_in_one_group_are_refused():
    """Within a group the second would silently replace the first (found by test_fuzz's weight
    decoding); across groups the loader refuses it already."""
    specs = [{"name": "w", "dtype": "float32", "shape": [1]}, {"name": "w", "dtype": "float32", "shape": [2]}]
    with pytest.raises(ModelFormatError, match="group 1: duplicate weight name 'w'"):
        decode_weights(np.ones(3, np.float32).tobytes(), specs, "group 1")
