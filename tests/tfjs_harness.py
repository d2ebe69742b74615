"""Run models in real TensorFlow.js 4.22 (pure-JS CPU backend) under Node, from Python tests.

``tools/setup.sh`` installs the Node dependencies (``npm install`` in ``tests/tfjs``:
``@tensorflow/tfjs@4.22.0`` pinned in ``tests/tfjs/package.json``). The Node script
``tests/tfjs/predict.js`` loads a model folder (model.json + shards) through a small ``fs``
IOHandler — no HTTP, no tfjs-node — runs it and writes the outputs back.

API
---
``tfjs_predict(model_dir, inputs, kind="graph"|"layers", outputs=None) -> list[np.ndarray]``
    Load ``model_dir/model.json`` (or ``model_dir`` itself when it is a ``.json`` file) with ``tf.loadGraphModel`` (kind="graph") or
    ``tf.loadLayersModel`` (kind="layers") and run it once.
    ``inputs``: a dict ``{input name: array}`` (graph models: signature input names, e.g. "x" or
    "x:0"; layers models: the model's input layer names) or a list of arrays in the model's input
    order (a single array is accepted too). Arrays keep their dtype: float32 / int32 / bool
    (other floats are sent as float32, other ints as int32).
    ``outputs``: graph models only — optional list of output tensor names given to
    ``model.execute`` (default: ``model.executeAsync``, i.e. the signature outputs in order).
    Returns the outputs as numpy arrays (float32 / int32 / bool), in the model's output order.
    A model that TF.js refuses to load or run raises ``TfjsError`` carrying TF.js's message.

``tfjs_predict_many(jobs) -> list[list[np.ndarray] | TfjsError]``
    Same as above for several (model_dir, inputs, kind, outputs) jobs in ONE Node process
    (Node + tfjs start-up is ~0.5-1 s; batch when you have many models). A job that fails gives
    its ``TfjsError`` in its slot instead of raising, so one bad model does not hide the others.
    ``jobs``: list of dicts with keys ``model_dir``, ``inputs``, optional ``kind``, ``outputs``,
    ``run_async`` (graph models with ``outputs``: ``model.executeAsync(feed, outputs)``, which
    control flow and dynamic ops such as NMS need).

``tfjs_available() -> bool`` / ``require_tfjs()``
    Whether node and ``tests/tfjs/node_modules/@tensorflow/tfjs`` are present. ``require_tfjs``
    raises ``TfjsMissing`` (a RuntimeError) naming the fix ("run tools/setup.sh" / "install node")
    — tests should call it (it FAILS, not skips: in CI everything is installed).

Transport: inputs and outputs travel as raw little-endian buffers in a temporary folder described
by a JSON file (no 1e6-element JSON arrays); outputs come back bit-exact (float32).
"""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

TFJS_DIR = Path(__file__).resolve().parent / "tfjs"
SCRIPT = TFJS_DIR / "predict.js"
_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_TIMEOUT_S = 600


class TfjsMissing(RuntimeError):
    """node or the npm dependencies in tests/tfjs are not installed."""


class TfjsError(RuntimeError):
    """TF.js refused to load or run a model (the message is TF.js's)."""


def encode_input(x) -> tuple[str, np.ndarray]:
    """(TF.js dtype, little-endian contiguous array) of an input as the TF.js pages read it:
    bool as uint8, integers as int32, anything else float32."""
    x = np.asarray(x)
    if x.dtype == np.bool_:
        return "bool", np.ascontiguousarray(x.astype(np.uint8))
    if x.dtype.kind in "iu":
        return "int32", np.ascontiguousarray(x.astype("<i4"))
    return "float32", np.ascontiguousarray(x.astype("<f4"))


def tfjs_available() -> bool:
    return shutil.which("node") is not None and (TFJS_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir()


def require_tfjs() -> None:
    if shutil.which("node") is None:
        raise TfjsMissing("node is not installed (Node.js >= 18 is needed to run real TensorFlow.js; "
                          "e.g. apt-get install nodejs npm, then tools/setup.sh)")
    if not (TFJS_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        raise TfjsMissing(f"@tensorflow/tfjs is not installed in {TFJS_DIR}: run tools/setup.sh "
                          f"(or `npm install --no-audit --no-fund` in tests/tfjs)")


def tfjs_predict(model_dir, inputs, kind: str = "graph", outputs=None) -> list[np.ndarray]:
    """Run one model in TF.js; see the module docstring."""
    result = tfjs_predict_many([{"model_dir": model_dir, "inputs": inputs, "kind": kind, "outputs": outputs}])[0]
    if isinstance(result, TfjsError):
        raise result
    return result


def tfjs_predict_many(jobs) -> list:
    """Run several models in one Node process; see the module docstring."""
    require_tfjs()
    with tempfile.TemporaryDirectory(prefix="tfjs-") as tmp:
        tmp = Path(tmp)
        spec = {"out_dir": str(tmp), "jobs": [_job_spec(i, job, tmp) for i, job in enumerate(jobs)]}
        (tmp / "jobs.json").write_text(json.dumps(spec))
        proc = subprocess.run(["node", str(SCRIPT), str(tmp / "jobs.json")], cwd=TFJS_DIR,
                              capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
        if proc.returncode != 0 or not (tmp / "result.json").is_file():
            raise RuntimeError(f"node {SCRIPT.name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        results = json.loads((tmp / "result.json").read_text())
        return [_read_result(r, job) for r, job in zip(results, jobs)]


def _job_spec(i: int, job: dict, tmp: Path) -> dict:
    kind = job.get("kind", "graph")
    if kind not in ("graph", "layers"):
        raise ValueError(f"kind must be 'graph' or 'layers', got {kind!r}")
    model_dir = Path(job["model_dir"]).resolve()     # a folder, or a model's JSON file itself
    if model_dir.is_file() and model_dir.suffix != ".json":
        model_dir = model_dir.parent
    inputs = job["inputs"]
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    named = list(inputs.items()) if isinstance(inputs, dict) else [(None, x) for x in inputs]
    specs = []
    for k, (name, x) in enumerate(named):
        dtype, x = encode_input(x)
        file = tmp / f"job{i}-in{k}.bin"
        file.write_bytes(x.tobytes())
        specs.append({"name": name, "dtype": dtype, "shape": list(x.shape), "file": str(file)})
    outputs = job.get("outputs")
    return {"model_dir": str(model_dir), "kind": kind, "inputs": specs,
            "outputs": list(outputs) if outputs is not None else None, "async": bool(job.get("run_async"))}


def _read_result(result: dict, job: dict):
    if not result["ok"]:
        return TfjsError(f"TF.js on {job['model_dir']}: {result['error']}")
    out = []
    for o in result["outputs"]:
        raw = Path(o["file"]).read_bytes()
        storage = np.uint8 if o["dtype"] == "bool" else np.dtype(_DTYPES[o["dtype"]]).newbyteorder("<")
        a = np.frombuffer(raw, storage).reshape(o["shape"])
        out.append(a.astype(_DTYPES[o["dtype"]]))
    return out
