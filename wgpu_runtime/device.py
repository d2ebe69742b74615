"""Adapters and devices: pick one by a substring, open it once per process, know its limits."""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from .errors import AdapterError

if TYPE_CHECKING:                  # wgpu is imported at run time only after _quiet_mesa
    import wgpu

    from .pipelines import PipelineCache


def _quiet_mesa() -> None:
    # Mesa warns on every adapter enumeration when XDG_RUNTIME_DIR is unset; the warning is harmless.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = os.path.join(tempfile.gettempdir(), f"xdg-runtime-{os.getuid()}")
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = path


def _wgpu():
    _quiet_mesa()
    import wgpu

    return wgpu


def describe(adapter: wgpu.GPUAdapter) -> str:
    info = adapter.info
    return f"{info['device']} via {info['backend_type']} ({info['description']})"


def enumerate_adapters() -> list[wgpu.GPUAdapter]:
    """All adapters wgpu sees, in its order (Vulkan lavapipe before OpenGL llvmpipe on CPU machines)."""
    return list(_wgpu().gpu.enumerate_adapters_sync())


def find_adapter(query: str | None = None) -> wgpu.GPUAdapter:
    """The adapter whose backend, device name or description contains ``query`` (case-insensitive).

    ``None`` or ``"default"`` picks what wgpu's ``request_adapter`` prefers.
    """
    wgpu = _wgpu()
    if query in (None, "", "default"):
        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        if adapter is None:
            raise AdapterError("no WebGPU adapter found (on Debian: apt-get install mesa-vulkan-drivers)")
        return adapter
    adapters = enumerate_adapters()
    q = query.lower()
    for a in adapters:
        info = a.info
        if q in " ".join(str(info.get(k, "")) for k in ("backend_type", "device", "description", "vendor")).lower():
            return a
    found = "; ".join(describe(a) for a in adapters) or "none"
    raise AdapterError(f"no adapter matches {query!r}; adapters found: {found}")


@dataclass
class Device:
    """One opened WebGPU device with its queue, limits and pipeline cache.

    ``lock`` serialises the runtime's work on the device: an inference holds it from planning to
    read-back, so models on one device may be called from many threads at once (a plan's
    buffers, its staging buffer above all, serve one inference at a time)."""

    adapter: wgpu.GPUAdapter
    device: wgpu.GPUDevice
    features: frozenset[str] = field(default_factory=frozenset)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def queue(self) -> wgpu.GPUQueue:
        return self.device.queue

    @property
    def name(self) -> str:
        return describe(self.adapter)

    @property
    def backend(self) -> str:
        return self.adapter.info["backend_type"]

    @property
    def limits(self) -> dict[str, int]:
        return self.device.limits

    @property
    def max_binding_bytes(self) -> int:
        return int(self.limits["max-storage-buffer-binding-size"])

    @property
    def has_timestamps(self) -> bool:
        return "timestamp-query" in self.features

    @property
    def is_software(self) -> bool:
        """llvmpipe/lavapipe: loops are capped at 65535 iterations per invocation (docs/lavapipe.md, pitfall 2)."""
        return self.adapter.info.get("adapter_type") == "CPU" or "llvmpipe" in self.adapter.info["device"]

    def wait_idle(self) -> None:
        """Block until all submitted GPU work is done (queue.on_submitted_work_done is broken in
        wgpu-py 0.32: docs/lavapipe.md pitfall 1, so read a tiny buffer back instead)."""
        self.queue.read_buffer(self._sync_buffer)

    @cached_property
    def _sync_buffer(self) -> wgpu.GPUBuffer:
        import wgpu

        return self.device.create_buffer(size=4, usage=wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST)

    @cached_property
    def pipelines(self) -> PipelineCache:
        from .pipelines import PipelineCache

        return PipelineCache(self)


_DEVICES: dict[str, Device] = {}
_DEVICES_LOCK = threading.Lock()


def get_device(adapter: str | None = None) -> Device:
    """The process-wide Device for an adapter query (opened on first use)."""
    a = find_adapter(adapter)
    key = describe(a)
    with _DEVICES_LOCK:
        return _DEVICES.get(key) or _open(a, key)


def _open(a, key: str) -> Device:
    wanted = [f for f in ("timestamp-query", "subgroup") if f in a.features]
    limits = {k: a.limits[k] for k in ("max-storage-buffer-binding-size", "max-buffer-size",
                                       "max-compute-workgroup-storage-size",
                                       "max-storage-buffers-per-shader-stage") if k in a.limits}
    dev = a.request_device_sync(required_features=wanted, required_limits=limits)
    _DEVICES[key] = Device(a, dev, frozenset(wanted))
    return _DEVICES[key]
