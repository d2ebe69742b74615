"""Recycled GPU buffers for device tensors and their read-backs (one pool per Device).

A buffer freed by a Tensor (``dispose()`` or garbage collection) or by a finished read-back goes
to its device's pool instead of back to the driver, and the next buffer of the same size and
usage is taken from there (as TF.js's WebGPU backend does). On lavapipe a fresh 8.7 MB buffer
costs about a page-faulted, zeroed allocation each time; a recycled one costs nothing, which is
what makes chaining models on the device cheaper than a numpy round trip (docs/benchmarks.md).

Reuse is safe in queue order: a recycled buffer's next writer is submitted after every
submission that read it. At most ``max_bytes`` stay idle (env ``WGPU_RUNTIME_POOL_MB``, default
256; 0 turns pooling off); beyond that the oldest idle buffers are destroyed.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

__all__ = ["BufferPool", "DESTROYED"]

DESTROYED = "_wgpu_runtime_destroyed"    # set in a buffer's __dict__ when anyone destroys it


class BufferPool:
    """Idle buffers of one wgpu device, by (size, usage)."""

    def __init__(self, device, max_bytes: int | None = None):
        self.device = device                      # the wgpu.GPUDevice
        self.max_bytes = _max_bytes() if max_bytes is None else max_bytes
        self.idle_bytes = 0
        self.reused = 0                           # acquisitions served from the pool
        self._idle: OrderedDict[int, tuple[tuple[int, int], object]] = OrderedDict()   # id -> (key, buffer)
        self._lock = threading.Lock()             # not Device.lock: a Tensor may be freed while it is held

    def acquire(self, size: int, usage, label: str = ""):
        """An idle buffer of exactly ``size`` bytes and ``usage`` (the most recently freed: its
        memory is the warmest), or a new one."""
        key = (int(size), int(usage))
        with self._lock:
            for ident, (k, buf) in reversed(list(self._idle.items())):
                if k != key:
                    continue
                del self._idle[ident]
                self.idle_bytes -= key[0]
                if not buf.__dict__.get(DESTROYED):    # destroyed through a stale reference: dropped
                    self.reused += 1
                    return buf
        return self.device.create_buffer(size=size, usage=usage, label=label)

    def release(self, buf) -> None:
        """Keep ``buf`` for reuse (it must be unmapped and no longer used by its owner)."""
        if buf is None or buf.__dict__.get(DESTROYED) or self.max_bytes <= 0 or buf.size > self.max_bytes:
            return
        key = (int(buf.size), int(buf.usage))
        evicted = []
        with self._lock:
            self._idle[id(buf)] = (key, buf)
            self.idle_bytes += key[0]
            while self.idle_bytes > self.max_bytes:
                _, (k, old) = self._idle.popitem(last=False)
                self.idle_bytes -= k[0]
                evicted.append(old)
        for old in evicted:
            old.destroy()

    def clear(self) -> None:
        """Destroy every idle buffer."""
        with self._lock:
            idle = [buf for _, buf in self._idle.values()]
            self._idle.clear()
            self.idle_bytes = 0
        for buf in idle:
            buf.destroy()


def _max_bytes() -> int:
    env = os.environ.get("WGPU_RUNTIME_POOL_MB", "").strip()
    if not env:
        return 256 << 20
    if not env.isdigit():
        raise ValueError(f"WGPU_RUNTIME_POOL_MB must be a whole number of MiB (0: no pooling), got {env!r}")
    return int(env) << 20
