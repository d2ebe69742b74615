"""Run models in real TensorFlow.js 4.22 in headless Chromium, on its cpu, webgl and webgpu backends.

Node's CPU backend (tests/tfjs_harness.py) is not where users deploy: this harness serves the
model folders over loopback HTTP (``http.server`` on 127.0.0.1, an ephemeral port, a thread
started and stopped here) to Debian's ``chromium --headless=new`` (WebGL and WebGPU on
SwiftShader: ``--use-angle=swiftshader --enable-unsafe-swiftshader --enable-unsafe-webgpu``).
The page ``tests/tfjs/browser.html`` loads the TF.js browser bundles from ``tests/tfjs/node_modules``
(``@tensorflow/tfjs`` and ``@tensorflow/tfjs-backend-webgpu``, 4.22.0, installed by
``tools/setup.sh``), then for each backend: ``tf.setBackend``, ``tf.loadGraphModel(url)`` /
``tf.loadLayersModel(url)`` over HTTP, inputs fetched as raw little-endian buffers, predict, and
the outputs POSTed back to the same server (base64 of their bytes: bit-exact). Nothing but
127.0.0.1 is contacted (``--no-proxy-server``); the browser is killed when the results are in, on
a timeout, or on an error.

API
---
``browser_predict(model_dir, inputs, kind="graph"|"layers", backends=BACKENDS, outputs=None)
-> {backend: list[np.ndarray]}``
    One model on each backend (inputs and outputs as in ``tfjs_harness.tfjs_predict``).
    Raises ``BrowserError`` when a backend is unavailable (with the reason the browser gives) or
    TF.js refuses the model on one.

``browser_predict_many(jobs, backends=BACKENDS, timeout_s=300, flags=CHROMIUM_FLAGS) -> BrowserRun``
    Several (model_dir, inputs, kind, outputs) jobs in ONE browser (start-up is a few seconds).
    ``BrowserRun.results[i][backend]`` is the output list or a ``BrowserError`` (one bad model or
    backend does not hide the others); ``BrowserRun.backends[backend]`` says what it ran on
    (e.g. "WebGL 2: ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device ...") or why it could not
    ("unavailable: navigator.gpu.requestAdapter() returned null ..."); webgl counts as
    unavailable without float32 render targets. No result within ``timeout_s``, a page error
    or chromium dying raise RuntimeError with the end of chromium's log.

``TOLERANCE[backend]``
    ``np.allclose`` tolerances against TensorFlow per backend, with the reasons beside them
    (tests/test_browser.py and tools/browser_check.py use them).

``require_browser()``
    Raises ``BrowserMissing`` (a RuntimeError naming tools/setup.sh) when chromium or the npm
    packages are missing; tests call it so that their absence FAILS, never skips.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from tfjs_harness import encode_input

TFJS_DIR = Path(__file__).resolve().parent / "tfjs"
BACKENDS = ("cpu", "webgl", "webgpu")
# The only files served from node_modules: the browser bundles.
BUNDLES = ("@tensorflow/tfjs/dist/tf.min.js", "@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js")
PAGE_FILES = {"/browser.html": "browser.html", "/browser_predict.js": "browser_predict.js", "/common.js": "common.js"}
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--no-proxy-server",
    # WebGL (ANGLE) and WebGPU (Dawn) on SwiftShader, the CPU implementation of Vulkan.
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--enable-unsafe-webgpu",
)
# Max error against TensorFlow (np.allclose: |got - ref| <= atol + rtol * |ref|), outputs O(1):
# - cpu: the converter tests' FLOAT_TOL for graph models (tests/test_convert_graph.py): TF.js's
#   pure-JS kernels and TF's Eigen kernels sum in different orders in float32 (observed <= 3.6e-7).
# - webgl, webgpu: float32 too (the harness checks WEBGL_RENDER_FLOAT32_ENABLED: no half-float
#   textures), observed <= 3e-7 on SwiftShader, but shader math is not correctly rounded: Vulkan
#   allows exp / log a few ULP (3 + 2|x| for exp), division 2.5 ULP, and tanh / sigmoid / softmax
#   are built on exp in TF.js's GLSL and WGSL; compilers may contract a*b+c into FMA. A real GPU
#   driver rounds differently again, so 5x the CPU's atol (1e-5, the layers tests' FLOAT_TOL).
TOLERANCE = {
    "cpu": {"atol": 2e-6, "rtol": 1e-5},
    "webgl": {"atol": 1e-5, "rtol": 1e-5},
    "webgpu": {"atol": 1e-5, "rtol": 1e-5},
}
_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_TIMEOUT_S = 300
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".json": "application/json"}


class BrowserMissing(RuntimeError):
    """chromium or the npm packages in tests/tfjs are not installed."""


class BrowserError(RuntimeError):
    """A backend is unavailable, or TF.js in the browser refused to load or run a model."""


@dataclass
class BrowserRun:
    results: list = field(default_factory=list)     # per job: {backend: list[np.ndarray] | BrowserError}
    backends: dict = field(default_factory=dict)    # backend -> what it runs on, or why it could not


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def require_browser() -> str:
    """The chromium executable; ``BrowserMissing`` naming the fix when something is missing."""
    path = chromium_path()
    if path is None:
        raise BrowserMissing("chromium not found: run tools/setup.sh (it installs Debian's chromium: "
                             "apt-get install -y --no-install-recommends chromium)")
    missing = [b for b in BUNDLES if not (TFJS_DIR / "node_modules" / b).is_file()]
    if missing:
        raise BrowserMissing(f"{', '.join(missing)} not installed in {TFJS_DIR / 'node_modules'}: run tools/setup.sh "
                             f"(or `npm install --no-audit --no-fund` in tests/tfjs)")
    return path


def browser_predict(model_dir, inputs, kind: str = "graph", backends=BACKENDS, outputs=None,
                    flags=CHROMIUM_FLAGS) -> dict:
    """One model on each backend; see the module docstring."""
    run = browser_predict_many([{"model_dir": model_dir, "inputs": inputs, "kind": kind, "outputs": outputs}],
                               backends, flags=flags)
    out = {}
    for backend in backends:
        result = run.results[0][backend]
        if isinstance(result, BrowserError):
            raise result
        out[backend] = result
    return out


def browser_predict_many(jobs, backends=BACKENDS, timeout_s: float = _TIMEOUT_S, flags=CHROMIUM_FLAGS) -> BrowserRun:
    """Several models on each backend in one browser; see the module docstring. ``flags``: the
    chromium command-line flags (tests drop one to see a backend become unavailable)."""
    chromium = require_browser()
    backends = list(backends)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backends {unknown} (known: {', '.join(BACKENDS)})")
    state = _State([_job_spec(i, job) for i, job in enumerate(jobs)], backends)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.state = state
    thread = threading.Thread(target=server.serve_forever, name="browser-harness-http", daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="browser-harness-") as tmp:
            url = f"http://127.0.0.1:{server.server_address[1]}/browser.html"
            log = Path(tmp) / "chromium.log"
            _run_browser([chromium, *flags], url, Path(tmp), log, state, timeout_s)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    return _collect(state, jobs)


# ---------------------------------------------------------------------------------------------
# the browser process

def _run_browser(browser: list, url: str, tmp: Path, log: Path, state: "_State", timeout_s: float) -> None:
    cmd = [*browser, f"--user-data-dir={tmp / 'profile'}", url]
    with open(log, "wb") as log_file:
        # Its own process group: the browser's GPU, renderer and utility processes end with it.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            problem = _wait(proc, state, timeout_s)
        finally:
            _kill(proc)
    if problem:
        raise RuntimeError(f"{problem}\n--- the end of chromium's log ---\n{_tail(log)}")


def _wait(proc: subprocess.Popen, state: "_State", timeout_s: float) -> str | None:
    """None once the page says it is done; else what went wrong."""
    deadline = time.monotonic() + timeout_s
    while not state.done.wait(0.25):
        if proc.poll() is not None:
            return f"chromium exited with status {proc.returncode} before the results came back"
        if time.monotonic() > deadline:
            return (f"no results from chromium after {timeout_s:g} s ({len(state.results)} of "
                    f"{len(state.jobs) * len(state.backends)} came back; backends: {state.backends})")
    return f"the page failed in chromium: {state.fatal}" if state.fatal else None


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass
    try:                                   # children still alive in its group (the leader is gone)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(log: Path, n: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# the loopback server

class _State:
    def __init__(self, jobs: list, backends: list):
        self.jobs, self.backends = jobs, {b: None for b in backends}
        self.results: dict = {}            # (backend, job index) -> result dict
        self.fatal: str | None = None
        self.done = threading.Event()
        self.lock = threading.Lock()

    def jobs_json(self) -> bytes:
        return json.dumps({"backends": list(self.backends), "jobs": [
            {"model_url": f"/models/{i}/{j['model_json']}", "kind": j["kind"], "outputs": j["outputs"],
             "inputs": [{"name": s["name"], "dtype": s["dtype"], "shape": s["shape"], "url": f"/inputs/{i}/{k}.bin"}
                        for k, s in enumerate(j["inputs"])]}
            for i, j in enumerate(self.jobs)]}).encode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "browser-harness"

    def log_message(self, fmt, *args):       # quiet: failures reach the caller through the results
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        state: _State = self.server.state
        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/browser.html") or path in PAGE_FILES:
            file = TFJS_DIR / PAGE_FILES.get(path, "browser.html")
            return self._send(200, file.read_bytes(), _CONTENT_TYPES[file.suffix])
        if path.startswith("/npm/") and path[len("/npm/"):] in BUNDLES:
            return self._send(200, (TFJS_DIR / "node_modules" / path[len("/npm/"):]).read_bytes(), "text/javascript")
        if path == "/jobs.json":
            return self._send(200, state.jobs_json(), "application/json")
        parts = path.split("/", 3)               # "", "models"|"inputs", index, rest
        if len(parts) == 4 and parts[2].isdigit() and int(parts[2]) < len(state.jobs):
            job = state.jobs[int(parts[2])]
            if parts[1] == "inputs" and parts[3].endswith(".bin") and parts[3][:-4].isdigit():
                k = int(parts[3][:-4])
                if k < len(job["inputs"]):
                    return self._send(200, job["inputs"][k]["bytes"])
            if parts[1] == "models":
                file = _inside(job["model_dir"], parts[3])
                if file is not None:
                    return self._send(200, file.read_bytes(), _CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
        return self._send(404, f"not served: {path}".encode(), "text/plain")

    def do_POST(self):
        state: _State = self.server.state
        path = urlsplit(self.path).path
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        except ValueError as e:
            return self._send(400, f"bad JSON: {e}".encode(), "text/plain")
        with state.lock:
            if path == "/backend" and body.get("backend") in state.backends:
                state.backends[body["backend"]] = body
            elif path == "/result" and body.get("backend") in state.backends:
                state.results[(body["backend"], int(body["job"]))] = body
            elif path == "/fatal":
                state.fatal = state.fatal or str(body.get("error"))
                state.done.set()
            elif path == "/done":
                state.done.set()
            else:
                return self._send(404, b"", "text/plain")
        return self._send(204)


def _inside(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` when it is a file inside ``folder`` (no way out with ``..``)."""
    file = (folder / relative).resolve()
    return file if file.is_file() and folder in file.parents else None


# ---------------------------------------------------------------------------------------------
# jobs in, results out

def _job_spec(i: int, job: dict) -> dict:
    kind = job.get("kind", "graph")
    if kind not in ("graph", "layers"):
        raise ValueError(f"kind must be 'graph' or 'layers', got {kind!r}")
    model_dir = Path(job["model_dir"]).resolve()
    model_json = "model.json"
    if model_dir.is_file():
        model_dir, model_json = model_dir.parent, model_dir.name
    if not (model_dir / model_json).is_file():
        raise FileNotFoundError(f"job {i}: no {model_json} in {model_dir}")
    inputs = job["inputs"]
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    named = list(inputs.items()) if isinstance(inputs, dict) else [(None, x) for x in inputs]
    specs = []
    for name, x in named:
        dtype, x = encode_input(x)
        specs.append({"name": name, "dtype": dtype, "shape": list(x.shape), "bytes": x.tobytes()})
    outputs = job.get("outputs")
    return {"model_dir": model_dir, "model_json": model_json, "kind": kind, "inputs": specs,
            "outputs": list(outputs) if outputs is not None else None}


def _collect(state: _State, jobs) -> BrowserRun:
    run = BrowserRun(backends={})
    for backend, info in state.backends.items():
        if info is None:
            run.backends[backend] = "the page never reported on this backend"
        else:
            run.backends[backend] = info.get("detail", "") if info["ok"] else f"unavailable: {info['error']}"
    for i, job in enumerate(jobs):
        row = {}
        for backend, info in state.backends.items():
            where = f"TF.js {backend} backend in chromium on {job['model_dir']}"
            if info is not None and not info["ok"]:
                row[backend] = BrowserError(f"{where}: backend unavailable: {info['error']}")
                continue
            result = state.results.get((backend, i))
            if result is None:
                row[backend] = BrowserError(f"{where}: no result came back")
            elif not result["ok"]:
                row[backend] = BrowserError(f"{where}: {result['error']}")
            else:
                row[backend] = [_decode(o) for o in result["outputs"]]
        run.results.append(row)
    return run


def _decode(o: dict) -> np.ndarray:
    raw = base64.b64decode(o["data"])
    storage = np.uint8 if o["dtype"] == "bool" else np.dtype(_DTYPES[o["dtype"]]).newbyteorder("<")
    return np.frombuffer(raw, storage).reshape(o["shape"]).astype(_DTYPES[o["dtype"]])
