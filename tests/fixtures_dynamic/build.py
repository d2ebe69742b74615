#!/usr/bin/env python
"""Build the dynamic-model fixtures: TensorFlow models with control flow, TensorArrays and
data-dependent shapes, converted in-process by the official converter (tensorflowjs 4.22).

    python tests/fixtures_dynamic/build.py --out DIR [name ...]      (default: every fixture)

One TensorFlow process builds everything; each SavedModel model is converted twice, with v1
control flow (the converter's default: Enter/Exit/Merge/Switch/NextIteration/LoopCond) into
``<name>_v1/`` and with ``control_flow_v2`` (While/If over library functions) into
``<name>_v2/``. ``tensorarray_v3`` is a TF1 graph (TensorArrayV3 in a v1 while loop), frozen and
converted with ``convert_tf_frozen_model``. Each folder holds model.json, shards, ``io.npz``
(``in:<key>`` inputs, ``out:<key>`` TensorFlow's outputs) and ``.complete`` (this script's
hash, written last; folders are built in a scratch folder and renamed into place).

Exit status: 0 ok, 1 a fixture failed, 3 TensorFlow / tensorflowjs cannot be imported.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")

import numpy as np  # noqa: E402

SCRIPT = Path(__file__).resolve()
VERSION = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:16]
COMPLETE = ".complete"
tf = None


# ------------------------------------------------------------------------------------- models
def model_loops():
    """While loops (counter-driven, nested, and one whose condition is computed from data), a
    TensorArray written in a loop and stacked, tf.cond on data, map_fn and scan."""
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x"),
                                      tf.TensorSpec([], tf.int32, name="steps")])
        def serve(self, x, steps):
            n = tf.shape(x)[0]
            ta = tf.TensorArray(tf.float32, size=n)

            def body(i, acc, ta):
                row = x[i]
                acc = acc + tf.reduce_sum(row)
                return i + 1, acc, ta.write(i, row * acc)

            _, acc, ta = tf.while_loop(lambda i, a, t: i < n, body, [0, tf.constant(0.0), ta])
            stacked = ta.stack()                                          # [N, 4]
            branch = tf.cond(acc > 0, lambda: stacked * 2.0, lambda: stacked - 1.0)
            # branches that are constants: only control edges tie them to the predicate
            picked = tf.cond(acc > 0, lambda: tf.constant([7.0, 8.0]), lambda: tf.constant([-7.0, -8.0]))

            def outer(i, total):                                          # nested loops
                def inner(j, t):
                    return j + 1, t + tf.cast(i * j, tf.float32) * x[0, 0]
                _, total = tf.while_loop(lambda j, t: j < i + 1, inner, [0, total])
                return i + 1, total
            _, nested = tf.while_loop(lambda i, t: i < steps, outer, [0, tf.constant(0.0)])

            v = x * 3.0                                                   # data-dependent condition
            v = tf.while_loop(lambda v: tf.reduce_max(tf.abs(v)) > 1.0, lambda v: [v * 0.5], [v])[0]
            def signed(i, s):                                             # a cond inside a loop
                return i + 1, tf.cond(tf.reduce_sum(x[i]) > 0, lambda: s + x[i], lambda: s - x[i] * 0.5)
            _, signed_sum = tf.while_loop(lambda i, s: i < n, signed, [0, tf.zeros([4])])
            mapped = tf.map_fn(lambda r: tf.reduce_sum(r * r) + r, x)     # [N, 4]
            scanned = tf.scan(lambda a, r: a * 0.5 + r, x)                # [N, 4]
            ta2 = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False)
            ta2 = ta2.unstack(x[:, :2])
            gathered = ta2.gather(tf.constant([1, 0]))
            return {"branch": branch, "picked": picked, "acc": acc, "signed_sum": signed_sum, "nested": nested, "halved": v, "mapped": mapped,
                    "scanned": scanned, "gathered": gathered}

    m = M()
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (5, 4)).astype(np.float32)
    return m, m.serve, {"x": x, "steps": np.array(4, np.int32)}


def model_detect():
    """Post-processing of a detector: NMS V3/V4/V5 (Soft-NMS), gathers of the selected boxes,
    Where / boolean_mask, TopKV2 and Unique: outputs whose shapes depend on the data."""
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="boxes"),
                                      tf.TensorSpec([None], tf.float32, name="scores"),
                                      tf.TensorSpec([None], tf.int32, name="labels")])
        def serve(self, boxes, scores, labels):
            sel = tf.image.non_max_suppression(boxes, scores, 12, iou_threshold=0.45, score_threshold=0.2)
            sel4, valid4 = tf.image.non_max_suppression_padded(boxes, scores, 10, iou_threshold=0.5,
                                                               score_threshold=0.3, pad_to_max_output_size=True)
            sel5, scores5 = tf.image.non_max_suppression_with_scores(boxes, scores, 15, iou_threshold=0.6,
                                                                     score_threshold=0.1, soft_nms_sigma=0.5)
            picked = tf.gather(boxes, sel) * 2.0                          # GPU op on a data-dependent shape
            where = tf.where(scores > 0.5)                                # [K, 1]
            masked = tf.boolean_mask(boxes, scores > 0.5) + 1.0
            top_v, top_i = tf.math.top_k(scores, k=6)
            uniq, uidx = tf.unique(labels)
            return {"nms3": sel, "picked": picked, "nms4": sel4, "valid4": valid4, "nms5": sel5,
                    "scores5": scores5, "where": where, "masked": masked, "top_values": top_v,
                    "top_indices": top_i, "unique": uniq, "unique_idx": uidx,
                    "n_selected": tf.size(sel)}

    m = M()
    rng = np.random.default_rng(2)
    n = 60
    lo = rng.integers(0, 12, size=(n, 2)) / 16
    size = rng.integers(1, 6, size=(n, 2)) / 16
    boxes = np.concatenate([lo, lo + size], axis=1).astype(np.float32)
    scores = (rng.integers(0, 10, size=n) / 10 + 0.05).astype(np.float32)     # many equal scores
    labels = rng.integers(0, 7, size=n).astype(np.int32)
    return m, m.serve, {"boxes": boxes, "scores": scores, "labels": labels}


def model_misc():
    """OneHot, Cumsum (exclusive / reverse), BroadcastTo, Einsum, CropAndResize; a uint8 image
    input, an int32 input, an unknown-rank scalar input, an int64 constant, an NCHW input."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (4, 3)).astype(np.float32)
    k = rng.normal(0, 0.3, (3, 3, 2, 4)).astype(np.float32)

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.uint8, name="image"),
                                      tf.TensorSpec([None], tf.int32, name="ids"),
                                      tf.TensorSpec(None, tf.float32, name="scale"),
                                      tf.TensorSpec([None, 2, 6, 6], tf.float32, name="nchw"),
                                      tf.TensorSpec([None, 4], tf.float32, name="boxes")])
        def serve(self, image, ids, scale, nchw, boxes):
            img = tf.cast(image, tf.float32) / 255.0
            onehot = tf.one_hot(ids, 5, on_value=2.0, off_value=-1.0)
            cs = tf.cumsum(onehot, axis=0) + tf.cumsum(onehot, axis=1, exclusive=True, reverse=True)
            big = tf.constant(3, tf.int64)
            ids64 = tf.cast(ids, tf.int64) * big
            bt = tf.broadcast_to(tf.reshape(tf.cast(ids64, tf.float32), [-1, 1]), [tf.shape(ids)[0], 3])
            e1 = tf.einsum("ij,jk->ik", tf.reshape(img[:, 0, 0, :], [-1, 3]) * scale, tf.transpose(w))
            e2 = tf.einsum("bij->bj", img[:, :, :, 0])
            crops = tf.image.crop_and_resize(img, boxes, tf.zeros([tf.shape(boxes)[0]], tf.int32), [4, 5])
            crops_n = tf.image.crop_and_resize(img, boxes, tf.zeros([tf.shape(boxes)[0]], tf.int32), [3, 3],
                                               method="nearest")
            nhwc = tf.transpose(nchw, [0, 2, 3, 1])
            conv = tf.nn.conv2d(nhwc, k, strides=1, padding="SAME")
            return {"onehot": onehot, "cumsum": cs, "broadcast": bt, "einsum_mm": e1, "einsum_sum": e2,
                    "crops": crops, "crops_nearest": crops_n, "conv": conv}

    m = M()
    r = np.random.default_rng(4)
    boxes = np.array([[0.1, 0.2, 0.8, 0.9], [0.0, 0.0, 1.0, 1.0], [0.5, 0.6, 0.3, 0.2],
                      [-0.2, 0.3, 0.6, 1.3]], np.float32)
    return m, m.serve, {"image": r.integers(0, 256, (2, 8, 8, 3)).astype(np.uint8),
                        "ids": np.array([0, 3, 4, 7, -1, 2], np.int32),
                        "scale": np.array(1.5, np.float32),
                        "nchw": r.normal(0, 1, (2, 2, 6, 6)).astype(np.float32), "boxes": boxes}


def model_tables():
    """A string -> int hash table (filled by the converter's modelInitializer) and string ops:
    split, n-grams, regex replace, hash buckets; string input."""
    class M(tf.Module):
        def __init__(self):
            super().__init__()
            keys = tf.constant(["the", "quick", "brown", "fox", "jumps"])
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(keys, tf.constant([3, 1, 4, 1, 5], tf.int64)), -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
        def serve(self, words):
            ids = self.table.lookup(words)
            sp = tf.compat.v1.string_split(words, delimiter="o")
            grams = tf.strings.ngrams(tf.RaggedTensor.from_tensor(tf.reshape(words, [1, -1])), 2, separator="+")
            return {"ids": ids, "size": self.table.size(), "buckets": tf.strings.to_hash_bucket_fast(words, 50),
                    "split_values": sp.values, "split_indices": sp.indices, "ngrams": grams.flat_values,
                    "vowels": tf.strings.regex_replace(words, "[aeiou]", "*")}

    m = M()
    return m, m.serve, {"words": np.array([b"the", b"lazy", b"fox", b"jumps", b"over", b"brown", b"dogs"], object)}


MODELS = {"loops": model_loops, "detect": model_detect, "misc": model_misc, "tables": model_tables}
ALL = [f"{m}_{v}" for m in MODELS for v in ("v1", "v2")] + ["tensorarray_v3"]


# ------------------------------------------------------------------------------ TF1 TensorArrayV3
def build_tensorarray_v3(tmp: Path) -> dict:
    """A TF1 graph: TensorArrayV3 split/read/write/gather/concat/size in a v1 while loop."""
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as conv
    v1 = tf.compat.v1
    graph = tf.Graph()
    x_val = np.random.default_rng(5).normal(0, 1, (6, 3)).astype(np.float32)
    v1.disable_control_flow_v2()
    try:
        with graph.as_default():
            x = v1.placeholder(tf.float32, [6, 3], name="x")
            src = tf.TensorArray(tf.float32, size=6, clear_after_read=False).unstack(x)
            out = tf.TensorArray(tf.float32, size=0, dynamic_size=True, clear_after_read=False)
            chunks = tf.TensorArray(tf.float32, size=3, infer_shape=False, clear_after_read=False).split(x, [1, 2, 3])

            def body(i, acc, out):
                row = src.read(i)
                acc = acc * 0.5 + row
                return i + 1, acc, out.write(i, acc * 2.0)
            _, acc, out = v1.while_loop(lambda i, a, o: i < src.size(), body,
                                        [tf.constant(0), tf.zeros([3]), out])
            tf.identity(out.stack(), name="stacked")
            tf.identity(out.gather([4, 1]), name="gathered")
            tf.identity(chunks.concat() + acc, name="concat")
            tf.identity(chunks.read(2) * 1.0, name="chunk2")
            names = ["stacked", "gathered", "concat", "chunk2"]
            with v1.Session(graph=graph) as sess:
                outs = sess.run([f"{n}:0" for n in names], {"x:0": x_val})
                frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), names)
    finally:
        v1.enable_control_flow_v2()
    pb = tmp / "frozen.pb"
    pb.write_bytes(frozen.SerializeToString())
    conv.convert_tf_frozen_model(str(pb), ",".join(names), str(tmp))
    pb.unlink()
    return {"in:x": x_val, **{f"out:{n}": o for n, o in zip(names, outs)}}


# ------------------------------------------------------------------------------------ building
def build_saved(name: str, tmp: Path, cache: dict) -> dict:
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as conv
    base, flavour = name.rsplit("_", 1)
    if base not in cache:
        work = Path(tempfile.mkdtemp(prefix=f"sm-{base}-", dir=tmp.parent))
        module, fn, inputs = MODELS[base]()
        tf.saved_model.save(module, str(work / "sm"), signatures={"serving_default": fn})
        loaded = tf.saved_model.load(str(work / "sm")).signatures["serving_default"]
        outs = {k: v.numpy() for k, v in loaded(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
        keys = tf.nest.flatten({k: k for k in loaded.structured_outputs})      # the outputs' order
        tensors = dict(zip(keys, (t.name for t in loaded.outputs)))
        cache[base] = (work, inputs, outs, tensors)
    work, inputs, outs, tensors = cache[base]
    conv.convert_tf_saved_model(str(work / "sm"), str(tmp), control_flow_v2=flavour == "v2")
    # the converter keeps some signature keys and names other outputs by tensor ("Identity_3:0"):
    # ref:<key> is the name to ask the converted model for
    return {**{f"in:{k}": v for k, v in inputs.items()}, **{f"out:{k}": v for k, v in outs.items()},
            **{f"ref:{k}": np.array(tensors[k]) for k in outs}}


def _storable(a: np.ndarray) -> np.ndarray:
    """String tensors (TF gives object arrays of bytes) as unicode arrays: npz without pickles."""
    a = np.asarray(a)
    if a.dtype == object:
        return np.array([x.decode("utf-8") if isinstance(x, bytes) else x for x in a.reshape(-1)],
                        dtype=str).reshape(a.shape)
    return a


def build(name: str, out_dir: Path, cache: dict) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out_dir))
    try:
        arrays = build_tensorarray_v3(tmp) if name == "tensorarray_v3" else build_saved(name, tmp, cache)
        np.savez(tmp / "io.npz", **{k: _storable(v) for k, v in arrays.items()})
        (tmp / COMPLETE).write_text(VERSION + "\n")
        target = out_dir / name
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    names = args.names or ALL
    unknown = [n for n in names if n not in ALL]
    if unknown:
        ap.error(f"unknown fixtures {unknown}; known: {ALL}")
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    global tf
    try:
        import tensorflow
        import tensorflowjs  # noqa: F401 (the converter: fail early when it is missing)
    except ImportError as e:
        print(f"cannot import TensorFlow / tensorflowjs: {e}", file=sys.stderr)
        return 3
    tf = tensorflow
    tf.get_logger().setLevel("ERROR")
    cache: dict = {}
    failed = []
    try:
        for name in names:
            t0 = time.perf_counter()
            try:
                build(name, out_dir, cache)
                print(f"{name}: built in {time.perf_counter() - t0:.1f} s", flush=True)
            except Exception as e:                      # report, go on with the others
                import traceback
                traceback.print_exc()
                print(f"{name}: FAILED: {type(e).__name__}: {e}", flush=True)
                failed.append(name)
    finally:
        for work, *_ in cache.values():
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
