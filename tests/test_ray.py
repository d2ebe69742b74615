"""Batch inference and fleet conformance on a real local Ray cluster (no mocks).

The module's cluster: a head (2 CPUs) and two worker nodes (1 CPU each), separate raylets with
their own node ids on this machine, standing for two machines; every node runs the software
adapters (lavapipe Vulkan, llvmpipe GL). Each node is a ``ray start --block`` in its own session,
torn down by process group at the end (not ``ray stop``, which would stop every Ray on the host).

* batch in one process: outputs against the numpy reference of the model, a corrupt file named
  while the rest completes (``--fail-fast`` stops), a rerun skips what is written (resume);
* batch on Ray with one model actor killed mid-run (SIGKILL): the output set is complete and
  byte-identical to the single-process run on the same adapter;
* a Parquet data set on Ray and in one process: the same rows, in order, as the numpy reference;
* conformance --ray: one column per (node, adapter), the worker nodes kept apart by node id; a
  node without adapters, a node killed mid-run and a timeout are failing columns, exit status 1.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra is part of the test set-up (tools/setup.sh)")

from fixtures.tiny_models import tiny_model  # noqa: E402
from wgpu_runtime.models import default_model_path  # noqa: E402

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")     # silences a FutureWarning of ray.init
RAY = str(Path(sys.executable).with_name("ray"))
ADAPTER = "vulkan"           # batch runs: single-process and Ray on the same adapter (byte-identical)
HIDE_ADAPTERS = {"VK_ICD_FILENAMES": "/nonexistent", "__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A Ray head and worker nodes on this machine, each a ``ray start --block`` process group."""

    def __init__(self, root: Path):
        self.root = root
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []
        self.process_of: dict[str, subprocess.Popen] = {}        # node id -> its ``ray start``

    def _start(self, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.root / f"node{len(self.nodes)}.log", "wb")
        p = subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats",
                              "--node-ip-address=127.0.0.1", *args], stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})
        self.nodes.append(p)
        return p

    def start_head(self) -> None:
        self._start(["--head", f"--port={self.port}", "--num-cpus=2", "--include-dashboard=false",
                     f"--ray-client-server-port={_free_port()}", "--object-store-memory=300000000",
                     f"--temp-dir={self.root}"])

    def add_node(self, env: dict | None = None, cpus: int = 1) -> subprocess.Popen:
        return self._start([f"--address={self.address}", f"--num-cpus={cpus}", "--object-store-memory=100000000"],
                           env)

    def add_node_and_wait(self, env: dict | None = None, cpus: int = 1) -> str:
        """A worker node, once it is up; its node id."""
        before = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        p = self.add_node(env, cpus)
        (node,) = {n["NodeID"] for n in self.wait_for(len(before) + 1)} - before
        self.process_of[node] = p
        return node

    def wait_for(self, alive: int, timeout: float = 120) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            nodes = [n for n in ray.nodes() if n["Alive"]]
            if len(nodes) >= alive:
                return nodes
            if time.monotonic() > deadline:
                logs = "\n".join(f"{p.name}: {p.read_text(errors='replace')[-1500:]}" for p in self.root.glob("node*.log"))
                raise AssertionError(f"{len(nodes)} of {alive} Ray nodes came up:\n{logs}")
            time.sleep(0.5)

    @staticmethod
    def stop(p: subprocess.Popen) -> None:
        """The node's whole process group: raylet, its workers and agents."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:
                time.sleep(1)      # children exit after ray start; then make sure

    def shutdown(self) -> None:
        for p in reversed(self.nodes):
            self.stop(p)


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))     # short: Ray's socket paths have a limit
    c = LocalCluster(root)
    try:
        c.start_head()
        deadline = time.monotonic() + 120
        while True:
            try:
                ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
                break
            except Exception:  # noqa: BLE001 -- the head is still starting
                assert time.monotonic() < deadline, f"the Ray head did not start: see {root}"
                time.sleep(1)
        c.head = c.wait_for(1)[0]["NodeID"]
        # one at a time: nodes starting together race for ports
        c.workers = sorted(c.add_node_and_wait() for _ in range(2))
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def cli(*args, timeout=600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "wgpu_runtime", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


# ------------------------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny graph model, 12 input files of various row counts and its numpy reference."""
    from wgpu_runtime.format import load_artifacts

    root = tmp_path_factory.mktemp("tiny")
    model = tiny_model(root / "model")
    w = load_artifacts(model).weights
    rng = np.random.default_rng(3)
    (root / "in").mkdir()
    want = {}
    for i in range(12):
        x = rng.uniform(-1, 1, (1 + i % 4, 8)).astype(np.float32)
        np.save(root / "in" / f"x{i:02d}.npy", x)
        want[f"x{i:02d}"] = np.maximum(x.astype(np.float64) @ w["w1"] + w["b1"], 0) @ w["w2"]
    return root, model, want


def _check_tiny(out: Path, want: dict) -> None:
    # float32 GPU arithmetic against a float64 reference: 8 + 16 terms of |value| <= ~10
    for stem, y in want.items():
        with np.load(out / f"{stem}.npz") as z:
            assert z.files == ["Identity:0"]
            np.testing.assert_allclose(z["Identity:0"], y, rtol=1e-5, atol=1e-5)


def test_batch_in_one_process_names_a_corrupt_file_and_resumes(tiny, tmp_path):
    root, model, want = tiny
    inputs = tmp_path / "in"
    shutil.copytree(root / "in", inputs)
    (inputs / "x05b.npy").write_bytes(b"\x93NUMPY garbage: a truncated header")
    out = tmp_path / "out"
    r = cli("batch", model, inputs, out, "--adapter", ADAPTER, "--json")
    assert r.returncode == 3, r.stderr
    s = json.loads(r.stdout)
    assert (s["written"], s["failed"], s["skipped"]) == (12, 1, 0)
    assert s["errors"][0]["input"] == "x05b.npy" and s["errors"][0]["error"].startswith("x05b.npy: cannot read")
    _check_tiny(out, want)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{k}.npz" for k in want)   # nothing else, no temp
    r = cli("batch", model, inputs, out, "--adapter", ADAPTER, "--json")                 # resume: nothing redone
    s = json.loads(r.stdout)
    assert (s["written"], s["skipped"], s["failed"]) == (0, 12, 1), r.stderr
    (out / "x07.npz").unlink()
    r = cli("batch", model, inputs, tmp_path / "ff", "--adapter", ADAPTER, "--fail-fast")
    assert r.returncode == 3 and "x05b.npy" in r.stderr and "--fail-fast" in r.stderr, r.stderr
    assert not (tmp_path / "ff" / "x07.npz").exists()        # stopped at x05b, in input order
    r = cli("batch", model, inputs, out, "--adapter", ADAPTER, "--json")
    assert json.loads(r.stdout)["written"] == 1
    _check_tiny(out, want)


def test_batch_usage_errors(tiny, tmp_path):
    root, model, _ = tiny
    r = cli("batch", model, root / "in", tmp_path / "o", "--workers", "2")
    assert r.returncode == 2 and "--workers needs --ray" in r.stderr
    r = cli("batch", model, tmp_path / "missing", tmp_path / "o")
    assert r.returncode == 2 and "inputs not found" in r.stderr


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """16 inputs of the embedded MobileNetV2 and their single-process outputs on ADAPTER."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(5)
    (root / "in").mkdir()
    for i in range(16):
        np.save(root / "in" / f"img{i:03d}.npy", rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32))
    r = cli("batch", default_model_path(), root / "in", root / "single", "--adapter", ADAPTER, "--json")
    assert r.returncode == 0, r.stderr
    return root


def _actor_pids(class_part: str) -> list[int]:
    from ray._private import state      # the GCS's actor table (the state API needs the dashboard)

    return [a["Pid"] for a in state.actors().values()
            if class_part in a.get("ActorClassName", "") and a.get("State") == "ALIVE" and a.get("Pid")]


def test_batch_on_ray_survives_a_killed_worker_byte_for_byte(cluster, images, tmp_path):
    out = tmp_path / "ray"
    proc = subprocess.Popen([sys.executable, "-P", "-m", "wgpu_runtime", "batch", str(default_model_path()),
                             str(images / "in"), str(out), "--adapter", ADAPTER, "--ray", cluster.address,
                             "--workers", "2", "--batch-size", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed, written_then = None, None
        deadline = time.monotonic() + 300
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            pids = _actor_pids("FilePredictor")
            written = len(list(out.glob("*.npz"))) if out.exists() else 0
            if pids and written >= 1:            # the actors are running and have begun writing
                os.kill(pids[0], signal.SIGKILL)
                killed, written_then = pids[0], written
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "the run ended before a worker could be killed: " + stderr[-2000:]
    assert written_then < 16, "the worker was killed after the last output"
    assert proc.returncode == 0, stderr[-3000:]
    s = json.loads(stdout)
    assert (s["written"] + s["skipped"], s["failed"]) == (16, 0)
    single = sorted(p.name for p in (images / "single").iterdir())
    assert sorted(p.name for p in out.iterdir()) == single            # each output exactly once
    for name in single:
        assert (out / name).read_bytes() == (images / "single" / name).read_bytes(), name


def test_a_parquet_data_set_on_ray_and_in_one_process(cluster, tiny, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wgpu_runtime.format import load_artifacts

    _, model, _ = tiny
    w = load_artifacts(model).weights
    x = np.random.default_rng(9).uniform(-1, 1, (45, 8)).astype(np.float32)
    pq.write_table(pa.table({"x": pa.FixedShapeTensorArray.from_numpy_ndarray(x)}), tmp_path / "rows.parquet")
    want = np.maximum(x.astype(np.float64) @ w["w1"] + w["b1"], 0) @ w["w2"]
    tables = []
    for where, extra in (("one", []), ("ray", ["--ray", cluster.address, "--workers", "2"])):
        r = cli("batch", model, tmp_path / "rows.parquet", tmp_path / where, "--adapter", ADAPTER,
                "--batch-size", "7", "--json", *extra)
        assert r.returncode == 0, r.stderr[-3000:]
        assert json.loads(r.stdout)["rows"] == 45
        t = pq.read_table(tmp_path / where / "part-00000.parquet")
        y = t.column("Identity:0").combine_chunks().to_numpy_ndarray()
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)     # in input order; see _check_tiny
        tables.append(y)
    assert np.array_equal(tables[0], tables[1])


def test_the_predictor_in_ray_datas_map_batches(cluster, tiny):
    """The Python API: Predictor as a Ray Data actor class, in this process's driver."""
    from wgpu_runtime.batch.predictor import Predictor
    from wgpu_runtime.format import load_artifacts

    _, model, _ = tiny
    w = load_artifacts(model).weights
    x = np.random.default_rng(11).uniform(-1, 1, (30, 8)).astype(np.float32)
    options = ray.data.DataContext.get_current().execution_options
    keep, options.preserve_order = options.preserve_order, True
    try:
        ds = ray.data.from_numpy(np.array_split(x, 5)).map_batches(Predictor, fn_constructor_kwargs={"model": str(model), "adapter": "gl"},
                                                compute=ray.data.ActorPoolStrategy(size=2), batch_size=4,
                                                batch_format="numpy", num_cpus=1)
        y = np.concatenate([b["Identity:0"] for b in ds.iter_batches(batch_size=None, batch_format="numpy")])
    finally:
        options.preserve_order = keep
    want = np.maximum(x.astype(np.float64) @ w["w1"] + w["b1"], 0) @ w["w2"]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)     # in order; see _check_tiny


# ------------------------------------------------------------------------------------ fleet
def _fleet(cluster, *args, address=None, env=None) -> tuple[subprocess.CompletedProcess, dict]:
    r = cli("conformance", "--ray", address or cluster.address, "--ops", "Relu", "--json", *args, env=env)
    assert r.stdout.strip(), r.stderr[-3000:]
    return r, json.loads(r.stdout)


def _columns(report: dict, node_id: str) -> list[dict]:
    return [a for a in report["adapters"] if a["node"]["id"] == node_id]


def test_fleet_conformance_keeps_nodes_apart(cluster, tmp_path):
    from wgpu_runtime.ops import REGISTRY

    md = tmp_path / "fleet.md"
    r, report = _fleet(cluster, "--report", md, address="auto", env={"RAY_ADDRESS": cluster.address})
    assert r.returncode == 0, r.stderr[-3000:]
    assert set(report) >= {"adapters", "summary"} and report["summary"]["passed"] is True
    for node in [cluster.head, *cluster.workers]:
        cols = _columns(report, node)
        assert sorted(c["backend"] for c in cols) == ["OpenGL", "Vulkan"], node
        for c in cols:
            assert c["passed"] and c["ops"]["cases"] == len(REGISTRY["Relu"].cases)
            assert c["driver"] and c["wgpu_version"] and "Mesa" in c["driver"]
    assert report["summary"]["adapters"] == 6
    text = md.read_text()
    for node in cluster.workers:               # the matrix names each column's node
        assert f"node {node[:12]}" in text and f"node {node[:8]}: Vulkan" in text


def test_fleet_conformance_a_timeout_is_a_failing_column_not_a_hang(cluster):
    r, report = _fleet(cluster, "--ray-timeout", "0.01")
    assert r.returncode == 1
    assert report["summary"]["passed"] is False
    assert all("--ray-timeout" in a["error"] for a in report["adapters"])


def _pids_in_group(pgid: int, title: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.getpgid(int(d.name)) == pgid and title in (d / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(d.name))
        except (OSError, ProcessLookupError):
            continue
    return found


def _driver_node(proc: subprocess.Popen) -> str:
    """The node the conformance driver is attached to, from its info line on stderr (``-v``)."""
    seen = []
    for line in proc.stderr:
        if "this driver is attached to node " in line:
            return line.rsplit(" ", 1)[1].strip()
        seen.append(line)
    raise AssertionError("the driver never named its node:\n" + "".join(seen)[-3000:])


def test_fleet_conformance_reports_a_node_without_adapters_and_a_node_that_dies(cluster):
    # runs last: it adds two nodes to the module's cluster and kills one node with adapters
    bare = cluster.add_node_and_wait(HIDE_ADAPTERS, cpus=0)
    spare = cluster.add_node_and_wait(cpus=0)
    proc = subprocess.Popen([sys.executable, "-P", "-m", "wgpu_runtime", "conformance", "--ray", cluster.address,
                             "--ops", "Relu,Add*,Sum,Conv2D", "--json", "--ray-timeout", "300", "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Every node here has the IP 127.0.0.1, and Ray attaches a driver to any raylet with its
        # IP: the node killed is one that neither the conformance driver nor this test's is on
        # (their runs end with their node, as on a real cluster)
        spared = {_driver_node(proc), ray.get_runtime_context().get_node_id()}
        doomed = next(n for n in [spare, *cluster.workers] if n not in spared)
        deadline = time.monotonic() + 200
        while not _pids_in_group(cluster.process_of[doomed].pid, "run_column") and proc.poll() is None:
            assert time.monotonic() < deadline, "the doomed node never ran its column"
            time.sleep(0.1)
        cluster.stop(cluster.process_of[doomed])     # the node dies while its columns run
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr[-3000:]
    report = json.loads(stdout)
    (col,) = _columns(report, bare)
    assert col["backend"] == "-" and "no WebGPU adapter" in col["error"] and not col["passed"]
    dead = _columns(report, doomed)
    assert dead and all(not c["passed"] and c["error"] for c in dead), dead
    for node in {cluster.head, spare, *cluster.workers} - {doomed}:     # the others still report theirs
        cols = _columns(report, node)
        assert sorted(c["backend"] for c in cols) == ["OpenGL", "Vulkan"], node
        assert all(c["passed"] for c in cols), [(c["adapter"], c["error"], c["ops"].get("failures"))
                                                for c in cols if not c["passed"]]
