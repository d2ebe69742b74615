"""Adapters and devices: pick one by a substring, open it once per process, know its limits."""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from .buffer_pool import BufferPool
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

    from .ffi_types import warm

    warm()                  # wgpu-py's C types built up front: a faster new process (ffi_types.py)
    return wgpu


def describe(adapter: wgpu.GPUAdapter) -> str:
    info = adapter.info
    return f"{info['device']} via {info['backend_type']} ({info['description']})"


def enumerate_adapters() -> list[wgpu.GPUAdapter]:
    """All adapters wgpu sees, in its order (Vulkan lavapipe before OpenGL llvmpipe on CPU machines).
    Enumerated once and kept: an OpenGL adapter released on another thread than the one that
    made it aborts the process (EGL BadAccess in wgpu-hal)."""
    with _ADAPTERS_LOCK:
        if _ADAPTERS is None:
            globals()["_ADAPTERS"] = list(_wgpu().gpu.enumerate_adapters_sync())
        return list(_ADAPTERS)


_ADAPTERS: list | None = None
_ADAPTERS_LOCK = threading.Lock()


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

    ``lock`` serialises the runtime's work on the device: an inference holds it while it plans,
    writes its inputs, encodes and submits, not while it waits for the GPU or reads its outputs
    (its staging buffer is its own until then), so models on one device may be called from many
    threads and coroutines at once. ``stats["readbacks"]`` counts the buffers mapped to read data back to the host.
    ``pool``: idle buffers of freed device tensors and read-backs, reused by size (buffer_pool.py).
    ``refused_variants``: kernel variants whose kernels failed to compile on this device, which
    planning passes over from then on ({(family, shape class, name): the error}; graph/plan.py build_plan)."""

    adapter: wgpu.GPUAdapter
    device: wgpu.GPUDevice
    features: frozenset[str] = field(default_factory=frozenset)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    stats: dict[str, int] = field(default_factory=lambda: {"readbacks": 0}, repr=False, compare=False)
    pool: BufferPool = field(init=False, repr=False, compare=False)    # recycled tensor / read-back buffers
    # kernel variants whose kernels do not compile here, passed over when planning (tuning.pass_over)
    refused_variants: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self.pool = BufferPool(self.device)

    @classmethod
    def wrap(cls, device: wgpu.GPUDevice) -> Device:
        """The Device of a ``wgpu.GPUDevice`` the caller opened (one per GPUDevice: models loaded
        onto it share its lock and pipeline cache). Features and limits are the device's own."""
        dev = getattr(device, _WRAPPED_ATTR, None)
        if dev is None:
            with _DEVICES_LOCK:
                dev = getattr(device, _WRAPPED_ATTR, None)
                if dev is None:
                    dev = cls(device.adapter, device, frozenset(str(f) for f in device.features))
                    setattr(device, _WRAPPED_ATTR, dev)
        return dev

    def count_readback(self) -> None:
        """Note one buffer mapped to read data back (``stats["readbacks"]``)."""
        self.stats["readbacks"] += 1

    @property
    def queue(self) -> wgpu.GPUQueue:
        """The device's queue."""
        return self.device.queue

    @property
    def name(self) -> str:
        """The adapter, its backend and driver, in words."""
        return describe(self.adapter)

    @property
    def backend(self) -> str:
        """The adapter's backend: "Vulkan", "OpenGL", "Metal", "D3D12"."""
        return self.adapter.info["backend_type"]

    @property
    def limits(self) -> dict[str, int]:
        """The device's limits (WebGPU names)."""
        return self.device.limits

    @property
    def max_binding_bytes(self) -> int:
        """The largest storage buffer binding, in bytes."""
        return int(self.limits["max-storage-buffer-binding-size"])

    @property
    def has_timestamps(self) -> bool:
        """Whether the device has timestamp queries (per-dispatch GPU times)."""
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
_WRAPPED_ATTR = "_wgpu_runtime_device"      # a caller's GPUDevice -> its Device


def get_device(adapter: str | Device | wgpu.GPUDevice | None = None) -> Device:
    """The process-wide Device for an adapter query (opened on first use); a Device is returned
    as it is, a caller's ``wgpu.GPUDevice`` wrapped (:meth:`Device.wrap`)."""
    if isinstance(adapter, Device):
        return adapter
    if adapter is not None and not isinstance(adapter, str):
        wgpu = _wgpu()
        if isinstance(adapter, wgpu.GPUDevice):
            return Device.wrap(adapter)
        raise AdapterError(f"adapter must be a query string, a Device or a wgpu.GPUDevice, got {type(adapter).__name__}")
    a = find_adapter(adapter)
    key = describe(a)
    with _DEVICES_LOCK:
        return _DEVICES.get(key) or _open(a, key)


def _open(a, key: str) -> Device:
    # shader-f16: for precision="float16" (precision.py); f16 arithmetic is never the default
    wanted = [f for f in ("timestamp-query", "subgroup", "shader-f16") if f in a.features]
    limits = {k: a.limits[k] for k in ("max-storage-buffer-binding-size", "max-buffer-size",
                                       "max-compute-workgroup-storage-size",
                                       "max-storage-buffers-per-shader-stage", "max-texture-dimension-2d",
                                       "max-texture-array-layers") if k in a.limits}
    dev = a.request_device_sync(required_features=wanted, required_limits=limits)
    _DEVICES[key] = Device(a, dev, frozenset(wanted))
    setattr(dev, _WRAPPED_ATTR, _DEVICES[key])
    return _DEVICES[key]
