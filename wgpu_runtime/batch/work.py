"""What a batch run has to do: the input files (in name order) and where each output goes, or a
Parquet / NumPy data set; resume by skipping outputs already complete."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..exit_codes import UsageError
from .predictor import output_complete

FILE_SUFFIXES = (".npy", ".npz")
DATASET_SUFFIXES = (".parquet", ".npy")
DATASET_OUTPUT = "part-00000.parquet"      # a data set's outputs, one Parquet file in OUTPUT


@dataclass(frozen=True)
class Item:
    key: str        # the input's file name: outputs are keyed by it, the order is by it
    path: str
    out: str

    def as_row(self) -> dict:
        return {"key": self.key, "path": self.path, "out": self.out}


def kind_of(inputs: str | os.PathLike) -> str:
    """"files" (a folder of .npy / .npz files, one output per file) or "dataset" (a .parquet or
    .npy file, or a folder of .parquet files: rows in, one Parquet file of rows out)."""
    p = Path(inputs)
    if not p.exists():
        raise UsageError(f"inputs not found: {inputs}")
    if p.is_file():
        if p.suffix not in DATASET_SUFFIXES:
            raise UsageError(f"{inputs}: give a folder of .npy/.npz files, a .parquet or a .npy data set")
        return "dataset"
    names = [c.suffix for c in p.iterdir() if c.is_file()]
    if ".parquet" in names and not any(s in FILE_SUFFIXES for s in names):
        return "dataset"
    return "files"


def file_items(inputs: str | os.PathLike, output: str | os.PathLike) -> list[Item]:
    """Every .npy / .npz file in ``inputs``, by name; its output is OUTPUT/<stem>.npz."""
    files = sorted((p for p in Path(inputs).iterdir() if p.is_file() and p.suffix in FILE_SUFFIXES
                    and not p.name.startswith(".")), key=lambda p: p.name)
    if not files:
        raise UsageError(f"{inputs}: no .npy or .npz file")
    out_dir = Path(output).resolve()
    seen: dict[str, str] = {}
    items = []
    for p in files:
        if p.stem in seen:
            raise UsageError(f"{p.name} and {seen[p.stem]} would both write {p.stem}.npz: rename one")
        seen[p.stem] = p.name
        items.append(Item(p.name, str(p.resolve()), str(out_dir / f"{p.stem}.npz")))
    return items


def pending(items: list[Item]) -> tuple[list[Item], int]:
    """(items whose output is not complete yet, how many are done already)."""
    todo = [i for i in items if not output_complete(i.out)]
    return todo, len(items) - len(todo)


def prepare_output(output: str | os.PathLike) -> Path:
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {output}: is a file, give a folder")
    if not out.resolve().parent.is_dir():
        raise UsageError(f"output {output}: folder {out.parent} does not exist")
    out.mkdir(exist_ok=True)
    for stale in out.glob(".*.partial"):      # a previous run stopped mid-write: never a result
        stale.unlink(missing_ok=True)
    return out
