"""Device memory: how tensors are laid out in buffers, uploads, and the liveness planner.

Every GPU tensor is a dense row-major array of 4-byte elements (float32 as f32, int32 as i32,
bool as u32 0/1: :mod:`wgpu_runtime.dtypes` converts). Intermediate buffers are assigned by
liveness: a buffer whose last reader has run is reused by a later tensor of at most its size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np



def nbytes_of(shape) -> int:
    return 4 * int(np.prod(shape, dtype=np.int64))


@dataclass(eq=False)
class Buf:
    """A virtual buffer in a plan. ``kind``: input, weight (per model), const (per plan), temp."""

    nbytes: int
    kind: str = "temp"
    data: np.ndarray | None = None
    key: str | None = None
    label: str = ""
    gpu: object = None           # the physical GPUBuffer, once assigned
    first: int = -1              # step index of the first writer / reader
    last: int = -1               # step index of the last reader
    pinned: bool = False         # lives to the end of the plan (requested outputs)
    base: Buf | None = None      # a view: bytes [offset, offset + nbytes) of ``base``
    offset: int = 0

    def view(self, offset: int, nbytes: int) -> Buf:
        """A binding of a sub-range of this buffer (a kernel sees it from index 0). ``offset``
        must be a multiple of the device's min-storage-buffer-offset-alignment."""
        root = self.base or self
        return Buf(nbytes, root.kind, label=f"{root.label}[{self.offset + offset}:]", base=root,
                   offset=self.offset + offset)

    @property
    def root(self) -> Buf:
        """The buffer a view is of (itself when it is not a view)."""
        return self.base or self


def _usage():
    import wgpu

    return wgpu.BufferUsage


def create_buffer(device, nbytes: int, label: str = "", extra=0, pooled: bool = False):
    """A storage buffer of at least ``nbytes`` (4-byte multiple); ``pooled``: taken from the
    device's pool of recycled buffers when one of that size is idle (buffer_pool.py)."""
    u = _usage()
    size, usage = max(4, (nbytes + 3) // 4 * 4), u.STORAGE | u.COPY_DST | u.COPY_SRC | extra
    if pooled:
        return device.pool.acquire(size, usage, label)
    return device.device.create_buffer(size=size, label=label, usage=usage)


def upload(device, array: np.ndarray, label: str = ""):
    """A new storage buffer holding ``array`` (already in device layout)."""
    buf = create_buffer(device, array.nbytes, label)
    if array.nbytes:
        device.queue.write_buffer(buf, 0, memoryview(np.require(array, requirements="C")).cast("B"))
    return buf


class Uploader:
    """Uploads many arrays, submitting every ~64 MB: write_buffer keeps a staging copy until the
    next submit (wgpu-lavapipe.md pitfall 6), so an unbounded batch grows host memory."""

    FLUSH_BYTES = 64 << 20

    def __init__(self, device):
        self.device = device
        self.pending = 0

    def __call__(self, array: np.ndarray, label: str = ""):
        buf = upload(self.device, array, label)
        self.pending += array.nbytes
        if self.pending >= self.FLUSH_BYTES:
            self.flush()
        return buf

    def flush(self) -> None:
        if self.pending:
            self.device.queue.submit([])
            self.pending = 0


@dataclass
class Allocation:
    buffers: list = field(default_factory=list)   # physical temp buffers created
    bytes: int = 0                                # their total size (peak activation memory)


def assign_temps(device, temps: list[Buf], n_steps: int) -> Allocation:
    """Give every temp Buf a physical buffer, reusing buffers whose tensors are dead.

    Greedy over steps: at a Buf's first step take the smallest free buffer that fits (or make
    one); after its last reader's step the buffer is free again. Pinned Bufs are never freed.
    """
    alloc = Allocation()
    starts: dict[int, list[Buf]] = {}
    ends: dict[int, list[Buf]] = {}
    for b in temps:
        starts.setdefault(b.first, []).append(b)
        if not b.pinned:
            ends.setdefault(max(b.last, b.first), []).append(b)
    free: list = []  # (size, buffer)
    for step in sorted(set(starts) | set(ends)):
        for b in sorted(starts.get(step, []), key=lambda b: -b.nbytes):
            fits = [f for f in free if f[0] >= b.nbytes]
            if fits:
                best = min(fits, key=lambda f: f[0])
                free.remove(best)
                b.gpu = best[1]
            else:
                size = max(4, (b.nbytes + 3) // 4 * 4)
                b.gpu = create_buffer(device, size, label=b.label)
                alloc.buffers.append((size, b.gpu))
                alloc.bytes += size
        for b in ends.get(step, []):
            free.append((b.gpu.size, b.gpu))
    return alloc
