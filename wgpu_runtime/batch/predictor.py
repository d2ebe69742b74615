"""Predictors for Ray Data's ``map_batches``: one model load per actor, on that actor's adapter.

``Predictor``: rows in, model outputs out (a Parquet / NumPy data set). ``FilePredictor``: items
naming input files in, each file's outputs written beside its name (atomically), status rows
out. Both also run without Ray, in one process (``batch`` without ``--ray``).
"""
from __future__ import annotations

import os
import socket
import time
import zipfile
from pathlib import Path

import numpy as np

from ..errors import WgpuRuntimeError

# the columns FilePredictor returns per input file
STATUS_COLUMNS = ("key", "rows", "seconds", "error", "node", "worker", "adapter", "skipped")
_EPOCH = (1980, 1, 1, 0, 0, 0)           # zip entries carry no wall-clock time: reruns write the same bytes


class BatchInputError(WgpuRuntimeError):
    """An input file cannot be read or does not fit the model."""


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez``'s format, byte-for-byte reproducible (fixed entry times), written atomically
    (a temporary name in the same folder, then a rename): a reader sees the whole file or none."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def output_complete(path: str | os.PathLike) -> bool:
    """An output written by write_npz (renamed into place whole, so a readable zip is complete)."""
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def read_feeds(path: str | os.PathLike, input_names: list[str]) -> dict[str, np.ndarray]:
    """An input file's arrays by model input: a .npy for a one-input model, a .npz by input name."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            if len(input_names) != 1:
                raise BatchInputError(f"{path.name}: a .npy holds one array, the model has "
                                      f"{len(input_names)} inputs ({', '.join(input_names)}): use .npz")
            return {input_names[0]: np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except BatchInputError:
        raise
    except Exception as e:  # noqa: BLE001 -- truncated, not numpy, pickled objects...
        raise BatchInputError(f"{path.name}: cannot read: {type(e).__name__}: {e}") from None


def _ray_identity() -> tuple[str, list]:
    """(node id, GPU ids) of this Ray worker; (host name, []) outside Ray."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id(), list(ray.get_gpu_ids())
    except ImportError:
        pass
    return socket.gethostname(), []


def actor_adapter(adapter: str | None, gpu_ids: list) -> str | None:
    """The adapter an actor opens: the one asked for; else, when Ray gave the actor a GPU, the
    hardware adapter of that index (Vulkan first); else wgpu's choice."""
    if adapter or not gpu_ids:
        return adapter
    from ..device import enumerate_adapters

    hw = [a for a in enumerate_adapters() if a.info.get("adapter_type") != "CPU"]
    hw.sort(key=lambda a: a.info.get("backend_type") != "Vulkan")
    index = int(gpu_ids[0])
    if index < len(hw):
        info = hw[index].info
        return " ".join(str(info.get(k, "")) for k in ("backend_type", "device", "description"))
    return None


class Predictor:
    """A model on this process's adapter, for ``ds.map_batches(Predictor, fn_constructor_kwargs=
    {"model": PATH, "adapter": "vulkan"}, concurrency=N, batch_format="numpy")``: a batch of
    columns named by the model's inputs (a one-input model takes any single column) in, one column
    per model output (tensor names, e.g. ``Identity:0``) out, rows in the same order."""

    def __init__(self, model: str, adapter: str | None = None):
        from ..loading import load_model

        self.node, gpu_ids = _ray_identity()
        self.pid = os.getpid()
        query = actor_adapter(adapter, gpu_ids)
        self.model = load_model(model, query)
        self.layers = not hasattr(self.model, "execute")
        if self.layers:                 # a layers model opens its device by the same query
            from ..device import get_device

            self.adapter = get_device(query).name
        else:
            self.adapter = self.model.device.name
        if self.layers:
            self.input_names, self.output_names = list(self.model.input_names), list(self.model.output_names)
        else:
            self.input_names = [s.name for s in self.model.inputs]
            self.output_names = [s.name for s in self.model.outputs]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference: {input name: array} -> {output name: array}."""
        if self.layers:
            outs = self.model.predict(feeds, verbose=0)
        else:
            outs = self.model.execute(feeds, self.output_names)
        outs = outs if isinstance(outs, list) else [outs]
        return {n: np.asarray(y) for n, y in zip(self.output_names, outs)}

    def feeds_of(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A batch's columns as the model's inputs (object columns of equal-shape arrays stacked)."""
        cols = {k: _stack(v) for k, v in batch.items()}
        if len(self.input_names) == 1 and len(cols) == 1:
            return {self.input_names[0]: next(iter(cols.values()))}
        return cols

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.infer(self.feeds_of(batch))


def _stack(column: np.ndarray) -> np.ndarray:
    column = np.asarray(column)
    if column.dtype == object:
        return np.stack([np.asarray(v) for v in column])
    return column


class FilePredictor(Predictor):
    """Items {key, path, out} in: each input file's outputs written to ``out`` (write_npz), an
    output already complete skipped (resume, and a retried task after a lost worker); a file
    that cannot be read or run is reported in its row (``error``), the others still run. Out:
    one status row per item (STATUS_COLUMNS)."""

    def run_item(self, key: str, path: str, out: str) -> dict:
        row = {"key": key, "rows": 0, "seconds": 0.0, "error": "", "node": self.node,
               "worker": f"{self.node[:8]}/{self.pid}", "adapter": self.adapter, "skipped": False}
        if output_complete(out):
            row["skipped"] = True
            return row
        t0 = time.perf_counter()
        try:
            feeds = read_feeds(path, self.input_names)
            outputs = self.infer(feeds)
            write_npz(out, outputs)
            first = next(iter(feeds.values()))
            row["rows"] = int(first.shape[0]) if first.ndim else 1
        except WgpuRuntimeError as e:
            row["error"] = str(e) if str(e).startswith(Path(path).name) else f"{Path(path).name}: {e}"
        row["seconds"] = time.perf_counter() - t0
        return row

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self.run_item(str(k), str(p), str(o)) for k, p, o in zip(batch["key"], batch["path"], batch["out"])]
        return {c: np.array([r[c] for r in rows]) for c in STATUS_COLUMNS}
