"""Running a batch: in this process on one adapter, or on a Ray cluster through Ray Data's
``map_batches`` (actors restarted and their tasks retried by Ray when a worker dies)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .predictor import STATUS_COLUMNS, BatchInputError, FilePredictor, Predictor
from .work import DATASET_OUTPUT, Item

Progress = Callable[[int, int], None]        # (items done, rows done) since the last call


@dataclass
class WorkerStats:
    node: str
    adapter: str
    items: int = 0
    rows: int = 0
    seconds: float = 0.0         # time spent reading, inferring and writing

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def add(self, items: int, rows: int, seconds: float) -> None:
        """Work this worker finished: ``items`` inputs of ``rows`` rows in ``seconds``."""
        self.items += items
        self.rows += rows
        self.seconds += seconds


@dataclass
class Summary:
    kind: str                    # "files" | "dataset"
    where: str                   # "this process" | the Ray cluster
    total: int = 0               # input files (or rows of a data set)
    done: int = 0
    skipped: int = 0             # outputs already complete (resume)
    rows: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)
    workers: dict[str, WorkerStats] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def add(self, row: dict) -> None:
        """One status row (predictor.STATUS_COLUMNS)."""
        if row["skipped"]:
            self.skipped += 1
            return
        if row["error"]:
            self.errors.append((row["key"], row["error"]))
            return
        self.done += 1
        self.rows += int(row["rows"])
        w = self.workers.setdefault(row["worker"], WorkerStats(row["node"], row["adapter"]))
        w.add(1, int(row["rows"]), float(row["seconds"]))

    def add_dataset_rows(self, rows: int, progress: Progress) -> None:
        """``rows`` rows of a data set written (a data set's inputs are its rows)."""
        self.rows += rows
        self.done += rows
        progress(rows, rows)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "where": self.where, "inputs": self.total, "written": self.done,
                "skipped": self.skipped, "failed": len(self.errors), "rows": self.rows,
                "seconds": round(self.seconds, 3), "rows_per_s": round(self.rows_per_s, 2),
                "errors": [{"input": k, "error": e} for k, e in self.errors],
                "workers": [{"worker": k, "node": w.node, "adapter": w.adapter, "items": w.items, "rows": w.rows,
                             "busy_s": round(w.seconds, 3), "rows_per_s": round(w.rows_per_s, 2)}
                            for k, w in sorted(self.workers.items())]}


def _rows(batch: dict) -> list[dict]:
    n = len(batch["key"])
    return [{c: (batch[c][i].item() if hasattr(batch[c][i], "item") else batch[c][i]) for c in STATUS_COLUMNS}
            for i in range(n)]


def _account(summary: Summary, row: dict, progress: Progress, fail_fast: bool) -> None:
    summary.add(row)
    progress(1, 0 if row["skipped"] or row["error"] else int(row["rows"]))
    if row["error"] and fail_fast:
        raise BatchInputError(f"{row['error']} (--fail-fast: stopped)")


# ----------------------------------------------------------------------------- one process
def files_local(model: str, adapter: str | None, items: list[Item], summary: Summary, progress: Progress,
                fail_fast: bool) -> None:
    pred = FilePredictor(model, adapter)
    for it in items:
        _account(summary, pred.run_item(it.key, it.path, it.out), progress, fail_fast)


def files_ray(ray, model: str, adapter: str | None, items: list[Item], summary: Summary, progress: Progress,
              fail_fast: bool, workers: int, batch_size: int, resources: dict) -> None:
    ds = ray.data.from_items([i.as_row() for i in items], override_num_blocks=max(1, math.ceil(len(items) / batch_size)))
    out = ds.map_batches(FilePredictor, fn_constructor_kwargs={"model": model, "adapter": adapter},
                         batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=workers),
                         batch_format="numpy", **resources)
    it = out.iter_batches(batch_size=None, batch_format="numpy")
    try:
        for batch in it:
            for row in _rows(batch):
                _account(summary, row, progress, fail_fast)
    finally:
        close = getattr(it, "close", None)
        if close:
            close()


# ---------------------------------------------------------------------------------- data set
def read_dataset_local(path: str) -> dict[str, np.ndarray]:
    """A .npy (one column, ``data``) or Parquet data set (file or folder) as numpy columns."""
    p = Path(path)
    if p.suffix == ".npy":
        try:
            return {"data": np.load(p, allow_pickle=False)}
        except Exception as e:  # noqa: BLE001
            raise BatchInputError(f"{p.name}: cannot read: {type(e).__name__}: {e}") from None
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except Exception as e:  # noqa: BLE001
        raise BatchInputError(f"{p.name}: cannot read: {type(e).__name__}: {e}") from None
    return {name: _column(table.column(name)) for name in table.column_names}


def _column(col) -> np.ndarray:
    import pyarrow as pa

    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    if isinstance(col.type, pa.FixedShapeTensorType):
        return col.to_numpy_ndarray()
    if hasattr(col.type, "to_pandas_dtype") and not pa.types.is_nested(col.type) \
            and not isinstance(col.type, pa.ExtensionType):
        return col.to_numpy(zero_copy_only=False)
    values = col.to_pylist()
    return np.stack([np.asarray(v) for v in values])


def _table(columns: dict[str, np.ndarray]):
    """numpy columns -> a pyarrow table: rows of more than one value as fixed-shape tensors."""
    import pyarrow as pa

    arrays = {}
    for name, a in columns.items():
        a = np.ascontiguousarray(a)
        arrays[name] = pa.FixedShapeTensorArray.from_numpy_ndarray(a) if a.ndim > 1 else pa.array(a)
    return pa.table(arrays)


class _ParquetOut:
    """Rows appended in order to OUTPUT/part-00000.parquet, renamed into place when complete."""

    def __init__(self, folder: Path):
        self.path = folder / DATASET_OUTPUT
        self.tmp = folder / f".{DATASET_OUTPUT}.partial"
        self.writer = None

    def write(self, columns: dict[str, np.ndarray]) -> None:
        import pyarrow.parquet as pq

        table = _table(columns)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)

    def close(self, complete: bool) -> None:
        if self.writer is not None:
            self.writer.close()
        if complete and self.writer is not None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def dataset_local(model: str, adapter: str | None, path: str, folder: Path, summary: Summary,
                  progress: Progress, batch_size: int) -> None:
    columns = read_dataset_local(path)
    n = len(next(iter(columns.values())))
    summary.total = n
    pred = Predictor(model, adapter)
    out = _ParquetOut(folder)
    w = summary.workers.setdefault(f"{pred.node[:8]}/{pred.pid}", WorkerStats(pred.node, pred.adapter))
    ok = False
    try:
        for start in range(0, n, batch_size):
            t0 = time.perf_counter()
            try:
                result = pred({k: v[start:start + batch_size] for k, v in columns.items()})
            except Exception as e:  # noqa: BLE001 -- named by rows, as a file would be by name
                raise BatchInputError(f"rows {start}..{min(n, start + batch_size) - 1}: {e}") from None
            out.write(result)
            rows = len(next(iter(result.values())))
            w.add(rows, rows, time.perf_counter() - t0)      # a data set's inputs are its rows
            summary.add_dataset_rows(rows, progress)
        ok = True
    finally:
        out.close(ok)


class TracedPredictor(Predictor):
    """Predictor plus the worker, its adapter and the batch time in ``__worker`` columns."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        out = super().__call__(batch)
        n = len(next(iter(out.values())))
        out["__worker"] = np.array([f"{self.node[:8]}/{self.pid}"] * n)
        out["__node"] = np.array([self.node] * n)
        out["__adapter"] = np.array([self.adapter] * n)
        out["__seconds"] = np.full(n, (time.perf_counter() - t0) / max(n, 1))
        return out


def dataset_ray(ray, model: str, adapter: str | None, path: str, folder: Path, summary: Summary,
                progress: Progress, workers: int, batch_size: int, resources: dict) -> None:
    p = Path(path)
    try:
        ds = ray.data.read_numpy(str(p)) if p.suffix == ".npy" else ray.data.read_parquet(str(p))
        summary.total = ds.count()
    except Exception as e:  # noqa: BLE001
        raise BatchInputError(f"{p.name}: cannot read: {type(e).__name__}: {e}") from None
    mapped = ds.map_batches(TracedPredictor, fn_constructor_kwargs={"model": model, "adapter": adapter},
                            batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=workers),
                         batch_format="numpy", **resources)
    out = _ParquetOut(folder)
    ok = False
    try:
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            trace = {k: batch.pop(k) for k in [c for c in batch if c.startswith("__")]}
            out.write(batch)
            rows = len(trace["__worker"])
            for i in range(rows):
                w = summary.workers.setdefault(str(trace["__worker"][i]),
                                               WorkerStats(str(trace["__node"][i]), str(trace["__adapter"][i])))
                w.add(1, 1, float(trace["__seconds"][i]))
            summary.add_dataset_rows(rows, progress)
        ok = True
    finally:
        out.close(ok)
