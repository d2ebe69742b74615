"""A writer to kill: publishes versions 1, 2, 3... of a model folder with write_artifacts (the
converter's writer) until it is killed. Every version's weights are filled with its number, and
model.json says which version it is, so a reader can tell a complete folder from a mixed one.

    python -m tests.fuzz.killed_writer DEST [--once VERSION]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from wgpu_runtime.format import write_artifacts

SHARD = 1 << 20
WEIGHTS = 6          # 6 x 1 MiB weights, one shard each


def write_version(dest: Path, version: int) -> None:
    groups = [[(f"w{i}", np.full(SHARD // 4, version, np.float32)) for i in range(WEIGHTS)]]
    doc = {"format": "graph-model", "generatedBy": "killed_writer", "convertedBy": f"version {version}",
           "modelTopology": {"node": [], "library": {}, "versions": {}}}
    write_artifacts(dest, doc, groups, shard_size=SHARD, overwrite=True)


def check(dest: Path) -> int:
    """The version a complete folder holds; AssertionError if it is not one complete version."""
    from wgpu_runtime.format import load_artifacts

    art = load_artifacts(dest)
    version = int(art.converted_by.split()[1])
    assert sorted(art.weights) == [f"w{i}" for i in range(WEIGHTS)], sorted(art.weights)
    for name, w in art.weights.items():
        assert w.shape == (SHARD // 4,) and (w == version).all(), f"{name} mixes versions"
    return version


def main(argv: list[str]) -> int:
    dest = Path(argv[0])
    if len(argv) > 2 and argv[1] == "--once":
        write_version(dest, int(argv[2]))
        return 0
    version = 1
    while True:
        write_version(dest, version)
        print(version, flush=True)
        version += 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
