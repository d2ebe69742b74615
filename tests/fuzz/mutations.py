"""The mutations: each takes a seeded ``random.Random`` and a fresh copy of a seed model, changes
files or the way the model is called, and says what must happen:

* ``same``   -- the answer must not change (the expected outputs are computed by the oracle
                for the case's inputs: NaN/Inf inputs included);
* ``reject`` -- the model (or call) is wrong in a way that changes the answer: a clean error;
* ``any``    -- either, but nothing worse (no abort, hang, runaway memory, escape, traceback);
* CLI cases set ``exit`` -- the exit statuses allowed (exit_codes.py).
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import seeds


@dataclass
class Spec:
    """How a mutated case is run and judged (the files are already in place)."""
    expect: str = "same"                      # same | reject | any
    action: str = "load"                      # load | threads | loop | cli
    inputs: dict | None = None                # name -> array (default: the seed's input)
    feed_by_name: bool = False
    predict_kwargs: dict = field(default_factory=dict)
    argv: list | None = None
    exit: tuple = (0,)
    extra: dict = field(default_factory=dict)


class Model:
    """A seed model's copy in a case folder: model.json as a dict, shards, helpers to write."""

    def __init__(self, folder: Path, kind: str, canary: Path):
        self.folder, self.kind, self.canary = folder, kind, canary
        self.path = folder / "model.json"
        self.doc = json.loads(self.path.read_text())

    def save(self, **dump) -> None:
        self.path.write_text(json.dumps(self.doc, **dump))

    @property
    def group(self) -> dict:
        return self.doc["weightsManifest"][0]

    def shard(self, i: int) -> Path:
        return self.folder / self.group["paths"][i]

    @property
    def nodes(self) -> list:
        return self.doc["modelTopology"]["node"]

    def node(self, name: str) -> dict:
        return next(n for n in self.nodes if n["name"] == name)

    @property
    def layers(self) -> list:
        return self.doc["modelTopology"]["model_config"]["config"]["layers"]


# ------------------------------------------------------------------------------ helpers
def _json_slots(value, path=()):
    """Every (container, key) in a JSON value, depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield value, k
            yield from _json_slots(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield value, i
            yield from _json_slots(v, path + (i,))


ODD_VALUES = [None, True, False, 0, -1, 1, 8.5, 2 ** 31, 2 ** 62, -2 ** 63, float("nan"), float("inf"), "",
              "DT_BOGUS", "float33", "x", "-1", "1e9", "\u0000", "../../etc/passwd", [], {}, [None], [1, 2, 3],
              {"i": "1"}, {"list": {}}, {"type": "DT_BOGUS"}, {"s": "!!"}, {"shape": {"unknownRank": True}},
              "A" * 300]


def _odd(rng: random.Random):
    return rng.choice(ODD_VALUES)


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def _rewrite_shards(m: Model, sizes=None, order=None) -> None:
    """Re-cut the first group's bytes into shards (same bytes, other files)."""
    data = b"".join(m.shard(i).read_bytes() for i in range(len(m.group["paths"])))
    for i in range(len(m.group["paths"])):
        m.shard(i).unlink()
    sizes = sizes or [len(data)]
    paths, start = [], 0
    for j, n in enumerate(sizes):
        chunk = data[start:start + n] if j < len(sizes) - 1 else data[start:]
        start += n
        name = f"part-{j}.bin"
        (m.folder / name).write_bytes(chunk)
        paths.append(name)
    m.group["paths"] = paths
    m.save()


# -------------------------------------------------------------------- same answer
def same_extra_keys(rng, m):
    m.doc["userDefinedMetadata"] = {"note": "extra", "n": rng.randint(0, 9)}
    m.doc["someFutureKey"] = {"a": [1, 2]}
    m.doc["modelTopology"]["futureTopologyKey"] = 1
    m.save(indent=rng.choice([None, 1, 4]))
    return Spec()


def same_shuffled_nodes(rng, m):
    if m.kind != "graph":
        return same_extra_keys(rng, m)
    rng.shuffle(m.nodes)
    m.save()
    return Spec()


def same_int_encodings(rng, m):
    """Attribute ints as JSON numbers rather than strings (protobuf JSON readers take both)."""
    if m.kind != "graph":
        return same_extra_keys(rng, m)
    for n in m.nodes:
        for a in n.get("attr", {}).values():
            if "list" in a and "i" in a["list"]:
                a["list"]["i"] = [int(v) for v in a["list"]["i"]]
    m.save()
    return Spec()


def same_no_signature(rng, m):
    """Without a signature the outputs are the graph's unconsumed nodes: just Identity."""
    if m.kind != "graph":
        return same_extra_keys(rng, m)
    m.doc.pop("signature", None)
    m.save()
    return Spec()


def same_reshard(rng, m):
    total = sum(m.shard(i).stat().st_size for i in range(len(m.group["paths"])))
    cut = sorted(rng.sample(range(1, total), min(3, total - 1)))
    _rewrite_shards(m, [b - a for a, b in zip([0] + cut, cut + [total])])
    return Spec()


def same_unused_weight(rng, m):
    """An extra group holding a weight no node reads (a layers model refuses it, as TF.js does)."""
    extra = np.arange(rng.randint(1, 50), dtype=np.float32)
    (m.folder / "extra.bin").write_bytes(extra.tobytes())
    m.doc["weightsManifest"].append({"paths": ["extra.bin"],
                                     "weights": [{"name": "unused_extra", "shape": [extra.size], "dtype": "float32"}]})
    m.save()
    return Spec(expect="same" if m.kind == "graph" else "reject")


def same_feed_names(rng, m):
    """Inputs named by signature key, tensor name or node name."""
    if m.kind != "graph":
        return Spec(predict_kwargs={"batch_size": rng.choice([1, 2, 3, 100])})
    if rng.random() < 0.5:
        m.doc.pop("signature", None)
        m.save()
    name = rng.choice(["x", "x:0"])
    return Spec(inputs={name: seeds.graph_input()}, feed_by_name=True)


def same_nonfinite_input(rng, m):
    """NaN / Inf in the input: the answer is TensorFlow's (the oracle's), NaN where it has NaN."""
    x = seeds.graph_input(rng.randint(0, 99)) if m.kind == "graph" else seeds.layers_input(rng.randint(0, 99))
    for _ in range(rng.randint(1, 3)):
        idx = tuple(rng.randrange(d) for d in x.shape)
        x[idx] = rng.choice([np.nan, np.inf, -np.inf, np.nan])
    return Spec(inputs={"x": x})


def same_threads(rng, m):
    return Spec(action="threads", extra={"threads": 2, "repeats": rng.randint(3, 8)})


def same_batched_threads(rng, m):
    """Four threads on one model with its dynamic batching on, the graph seed's batch dimension
    made free (layers models run the plain threads case): each gets the oracle's answer."""
    if m.kind == "graph":
        for dims in (m.node("x")["attr"]["shape"]["shape"]["dim"],
                     m.doc["signature"]["inputs"]["x"]["tensorShape"]["dim"]):
            dims[0]["size"] = "-1"
        m.save()
    return Spec(action="threads", extra={"threads": 4, "repeats": rng.randint(3, 8), "batching": True})


def same_loop(rng, m):
    return Spec(action="loop", extra={"repeats": 30})


def same_layers_extra_config(rng, m):
    if m.kind != "layers":
        return same_int_encodings(rng, m)
    for layer in m.layers:
        layer["config"]["future_option"] = rng.choice([None, 1, "x"])
    m.layers[1]["config"]["units"] = float(m.layers[1]["config"]["units"])     # 5.0: still an integer
    m.save()
    return Spec()


# -------------------------------------------------------------------- must reject
def reject_shard_extra_bytes(rng, m):
    i = rng.randrange(len(m.group["paths"]))
    with open(m.shard(i), "ab") as f:
        f.write(os.urandom(rng.choice([1, 4, 100])))
    return Spec(expect="reject")


def reject_shard_missing_bytes(rng, m):
    i = rng.randrange(len(m.group["paths"]))
    data = m.shard(i).read_bytes()
    m.shard(i).write_bytes(data[:-rng.randint(1, min(8, len(data)))])
    return Spec(expect="reject")


def reject_shard_order(rng, m):
    paths = m.group["paths"]
    if len(paths) < 2:
        return reject_shard_extra_bytes(rng, m)
    i, j = rng.sample(range(len(paths)), 2)
    paths[i], paths[j] = paths[j], paths[i]
    m.save()
    return Spec(expect="reject")


def reject_bad_dtype(rng, m):
    w = rng.choice(m.group["weights"])
    w["dtype"] = rng.choice(["float33", "DT_BOGUS", "float", 7, None])
    m.save()
    return Spec(expect="reject")


def reject_node_dtype(rng, m):
    if m.kind != "graph":
        return reject_layer_units(rng, m)
    node = rng.choice([n for n in m.nodes if "T" in n.get("attr", {}) or "dtype" in n.get("attr", {})])
    key = "T" if "T" in node["attr"] else "dtype"
    node["attr"][key] = {"type": rng.choice(["DT_BOGUS", "DT_FLOAT33", "FLOAT"])}
    m.save()
    return Spec(expect="reject")


def reject_quantization(rng, m):
    w = next(w for w in m.group["weights"] if w["dtype"] == "float32")
    choice = rng.randrange(4)
    if choice == 0:
        w["dtype"] = "float16"
        w["quantization"] = {"dtype": "uint8", "min": 0.0, "scale": 1.0}
    else:
        w["quantization"] = {"dtype": "uint8", "min": 0.0, "scale": 1.0}
        w["quantization"][rng.choice(["min", "scale"])] = [float("nan"), float("inf"), float("-inf")][choice - 1]
    m.save()
    return Spec(expect="reject")


def reject_extra_inputs(rng, m):
    if m.kind != "graph":
        return reject_layer_string(rng, m)
    node = m.node(rng.choice(["relu", "softmax", "Identity"]))
    node["input"] = node["input"] + ["x", "conv_b"][:rng.randint(1, 2)]
    m.save()
    return Spec(expect="reject")


def reject_cycle(rng, m):
    if m.kind != "graph":
        return reject_layer_units(rng, m)
    if rng.random() < 0.5:
        m.node("conv")["input"].append("^softmax")          # through a control edge
    else:
        m.node("relu")["input"] = ["dense"]                 # a data cycle
    m.save()
    return Spec(expect="reject")


def reject_dilation(rng, m):
    if m.kind != "graph":
        return reject_layer_units(rng, m)
    attrs = m.node("conv")["attr"]
    choice = rng.randrange(3)
    if choice == 0:          # a dilated window larger than the input: TF's output size is negative
        attrs["dilations"] = {"list": {"i": ["1", str(rng.choice([6, 100000])), "1", "1"]}}
        attrs["strides"] = {"list": {"i": ["1", str(rng.choice([1, 2])), "2", "1"]}}
    elif choice == 1:
        attrs["strides"] = {"list": {"i": ["1", rng.choice(["0", "-1"]), "1", "1"]}}
    else:
        attrs["dilations"] = {"list": {"i": ["1", "1", "1"]}}
    m.save()
    return Spec(expect="reject")


def reject_duplicate_node(rng, m):
    if m.kind != "graph":
        return reject_missing_weight(rng, m)
    m.nodes.append(dict(rng.choice(m.nodes)))
    m.save()
    return Spec(expect="reject")


def reject_missing_weight(rng, m):
    m.group["weights"].pop(rng.randrange(len(m.group["weights"])))
    m.save()
    return Spec(expect="reject")


def reject_layer_units(rng, m):
    if m.kind != "layers":
        return reject_cycle(rng, m)
    cfg = m.layers[rng.choice([1, 2])]["config"]
    cfg["units"] = rng.choice([8.5, "5", -3, True, None])
    m.save()
    return Spec(expect="reject")


def reject_layer_string(rng, m):
    if m.kind != "layers":
        return reject_extra_inputs(rng, m)
    m.layers[rng.choice([1, 2])] = rng.choice(["Dense", 5, None, ["Dense"]])
    m.save()
    return Spec(expect="reject")


def reject_layer_activation(rng, m):
    if m.kind != "layers":
        return reject_dilation(rng, m)
    m.layers[1]["config"]["activation"] = rng.choice(["relux", 3, {"class_name": "Nope"}])
    m.save()
    return Spec(expect="reject")


def reject_predict_call(rng, m):
    """A layers model called badly: batch_size <= 0, a string input, a wrong rank."""
    if m.kind != "layers":
        return Spec(expect="reject", inputs={"x": np.zeros((1, 8, 8, 2), np.float32)})
    choice = rng.randrange(3)
    if choice == 0:
        return Spec(expect="reject", predict_kwargs={"batch_size": rng.choice([-1, 0])})
    if choice == 1:
        return Spec(expect="reject", inputs={"x": np.array([["a"] * 6] * 4)})
    return Spec(expect="reject", inputs={"x": np.zeros((4, 7), np.float32)})


def reject_unknown_input(rng, m):
    if m.kind != "graph":
        return reject_predict_call(rng, m)
    return Spec(expect="reject", inputs={rng.choice(["y", "x:1", "x:0:0", "", "^x"]): seeds.graph_input()},
                feed_by_name=True)


# ------------------------------------------------------------------- anything but a crash
def any_huge_shape(rng, m):
    if m.kind == "layers" and rng.random() < 0.6:
        choice = rng.randrange(2)
        if choice == 0:
            m.layers[1]["config"]["units"] = rng.choice([4 * 10 ** 9, 10 ** 12])          # a 16 GB+ kernel
        else:
            m.layers[0]["config"]["batch_input_shape"] = [None, 10 ** 9]
        m.save()
        return Spec(expect="reject")
    w = rng.choice(m.group["weights"])
    w["shape"] = rng.choice([[2 ** 62, 0], [2 ** 31, 2 ** 31], [1] * 1000, [0] * 70, [-1, 4]])
    m.save()
    return Spec(expect="reject")


def any_deep_json(rng, m):
    depth = rng.choice([5000, 20000, 100000])
    text = m.path.read_text()
    key = rng.choice(['"userDefinedMetadata"', '"modelTopology"', '"signature"'])
    m.path.write_text("{" + key + ": " + _deep_json(depth) + ", " + text[1:])
    return Spec(expect="reject" if key != '"userDefinedMetadata"' else "any")


def any_fifo(rng, m):
    target = m.path if rng.random() < 0.5 else m.shard(rng.randrange(len(m.group["paths"])))
    target.unlink()
    os.mkfifo(target)
    return Spec(expect="reject")


def any_device_file(rng, m):
    target = m.path if rng.random() < 0.5 else m.shard(0)
    target.unlink()
    target.symlink_to(rng.choice(["/dev/zero", "/dev/urandom", "/dev/null", "/proc/self/mem"]))
    return Spec(expect="reject")


def any_big_model_json(rng, m):
    """A sparse model.json over the size cap: refused before it is read."""
    with open(m.path, "r+b") as f:
        f.truncate(rng.choice([300, 2000]) << 20)
    return Spec(expect="reject")


def any_symlink_loop(rng, m):
    target = m.shard(0)
    target.unlink()
    loop = m.folder / "loop.bin"
    target.symlink_to(loop.name)
    loop.symlink_to(target.name)
    return Spec(expect="reject")


def escape_shard_symlink(rng, m):
    """A shard that is a symlink to a file outside the model folder (same bytes): refused, unread."""
    i = rng.randrange(len(m.group["paths"]))
    outside = m.canary / f"{m.folder.parent.name}-{i}.bin"
    outside.write_bytes(m.shard(i).read_bytes())
    m.shard(i).unlink()
    m.shard(i).symlink_to(os.path.relpath(outside, m.folder) if rng.random() < 0.5 else outside)
    return Spec(expect="reject")


def escape_folder_symlink(rng, m):
    """The shards live in a subfolder that is a symlink to a folder outside."""
    outside = m.canary / f"{m.folder.parent.name}-dir"
    outside.mkdir()
    paths = m.group["paths"]
    for p in paths:
        (m.folder / p).rename(outside / p)
    (m.folder / "w").symlink_to(outside)
    m.group["paths"] = [f"w/{p}" for p in paths]
    m.save()
    return Spec(expect="reject")


def escape_path(rng, m):
    m.group["paths"][0] = rng.choice(["../" + m.group["paths"][0], "/etc/passwd", "a\u0000b.bin",
                                      "C:\\x.bin", "", "./../x.bin"])
    m.save()
    return Spec(expect="reject")


def any_random_value(rng, m):
    """Replace 1-3 values anywhere in model.json with odd ones."""
    slots = list(_json_slots(m.doc))
    for _ in range(rng.randint(1, 3)):
        container, key = rng.choice(slots)
        try:
            container[key] = _odd(rng)
        except (TypeError, IndexError):
            pass
    try:
        m.save()
    except (ValueError, TypeError):
        m.path.write_text("{}")
    return Spec(expect="any")


def any_delete_key(rng, m):
    slots = [(c, k) for c, k in _json_slots(m.doc) if isinstance(c, dict)]
    for _ in range(rng.randint(1, 2)):
        container, key = rng.choice(slots)
        container.pop(key, None)
    m.save()
    return Spec(expect="any")


def any_byte_flips(rng, m):
    target = m.path if rng.random() < 0.6 else m.shard(rng.randrange(len(m.group["paths"])))
    data = bytearray(target.read_bytes())
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.3:
        data = data[:rng.randrange(len(data) + 1)]
    target.write_bytes(bytes(data))
    return Spec(expect="any")


def any_odd_input(rng, m):
    shape = seeds.GRAPH_INPUT_SHAPE if m.kind == "graph" else seeds.LAYERS_INPUT_SHAPE
    x = rng.choice([np.zeros(shape, np.float64), np.zeros(shape, np.int32), np.zeros(shape, bool),
                    np.zeros((0,) + shape[1:], np.float32), np.zeros(shape[:-1], np.float32),
                    np.zeros(shape, np.complex64), np.array(3.0, np.float32)])
    return Spec(expect="any", inputs={"x": x})


# ---------------------------------------------------------------------------------- CLI
def cli_case(rng, m):
    """The command line with good and bad arguments: exit 0/2/3/4 and one clean line, never a traceback."""
    model = str(m.folder)
    x = m.folder / "x.npy"
    shape = seeds.GRAPH_INPUT_SHAPE if m.kind == "graph" else seeds.LAYERS_INPUT_SHAPE
    np.save(x, np.zeros(shape, np.float32))
    name = "x"
    out = m.folder.parent / "out"
    choices = [
        (["run", model, "--input", f"{name}={x}", "--output", str(out / "missing" / "y.npz")], (2,)),
        (["run", model, "--input", f"{name}={x}", "--output", str(m.folder)], (2,)),
        (["run", model, "--input", f"{name}={x}", "--output", "/proc/y.npz"], (2, 3, 4)),
        (["run", model, "--input", f"{name}={x}", "--output", str(m.folder / "y.npz")], (0,)),
        (["run", model, "--input", f"nope={x}"], (2, 3)),
        (["run", model, "--input", f"{name}={m.folder}/missing.npy"], (2,)),
        (["run", model, "--input", f"{name}={m.path}"], (2, 3)),
        (["run", model, "--input", "novalue"], (2,)),
        (["run", model + "\u0000x", "--input", f"{name}={x}"], (2, 3)),
        (["run", model, "--input", f"{name}={x}", "--outputs", "bogus:7"], (2, 3)),   # layers: a usage error
        (["info", model, "--json"], (0,)),
        (["info", str(m.folder.parent)], (2, 3)),
        (["info", "/dev/null"], (2, 3)),
        (["bench", model, "--runs", "0"], (2,)),
        (["bench", model, "--runs", "-3"], (2,)),
        (["bench", model, "--warmup", "x"], (2,)),
        (["bench", model, "--runs", "1", "--warmup", "0", "--threshold", "nan"], (2,)),
        (["run"], (2,)),
        (["nonsense-command"], (2,)),
        (["run", model, "--adapter", "no-such-adapter", "--input", f"{name}={x}"], (2, 4)),
    ]
    argv, codes = rng.choice(choices)
    return Spec(expect="any", action="cli", argv=argv, exit=codes)


SAME = [same_extra_keys, same_shuffled_nodes, same_int_encodings, same_no_signature, same_reshard,
        same_unused_weight, same_feed_names, same_nonfinite_input, same_threads, same_batched_threads, same_loop,
        same_layers_extra_config]
REJECT = [reject_shard_extra_bytes, reject_shard_missing_bytes, reject_shard_order, reject_bad_dtype,
          reject_node_dtype, reject_quantization, reject_extra_inputs, reject_cycle, reject_dilation,
          reject_duplicate_node, reject_missing_weight, reject_layer_units, reject_layer_string,
          reject_layer_activation, reject_predict_call, reject_unknown_input]
ANY = [any_huge_shape, any_deep_json, any_fifo, any_device_file, any_big_model_json, any_symlink_loop,
       escape_shard_symlink, escape_folder_symlink, escape_path, any_random_value, any_delete_key,
       any_byte_flips, any_odd_input, cli_case]
MUTATIONS = {f.__name__: f for f in SAME + REJECT + ANY}
# how often each family is drawn: random mutations find new things, the catalogue keeps old ones fixed
WEIGHTS = {**{n: 1.0 for n in MUTATIONS}, "any_random_value": 6.0, "any_delete_key": 2.0,
           "any_byte_flips": 4.0, "cli_case": 3.0}


def pick(rng: random.Random) -> str:
    names = sorted(MUTATIONS)
    return rng.choices(names, weights=[WEIGHTS[n] for n in names])[0]

