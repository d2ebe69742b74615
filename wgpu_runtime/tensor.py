"""Tensors on the device: a GPU buffer with a shape and a dtype, fed to and returned by models
without a trip through host memory (``wr.tensor(a)``, ``model.predict(x, on_device=True)``).

A Tensor made by the runtime owns its buffer: ``dispose()`` frees it at once, and dropping the
last reference frees it too; freed buffers go to the device's pool for reuse by later tensors of
that size (buffer_pool.py). A Tensor wrapping a caller's ``wgpu.GPUBuffer`` never frees it.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .buffer_pool import DESTROYED as _DESTROYED
from .device import Device, get_device
from .dtypes import DEVICE_DTYPES, device_dtype, dtype_of, from_device_bytes, to_device_array
from .errors import DisposedError, TensorError
from .memory import create_buffer, nbytes_of

if TYPE_CHECKING:
    import wgpu


class Tensor:
    """A dense row-major tensor in a GPU buffer: ``buffer``, ``shape``, ``dtype`` ("float32",
    "int32" or "bool", stored as u32 0/1), ``device``. ``numpy()`` reads it back."""

    def __init__(self, buffer: wgpu.GPUBuffer, shape, dtype: str, device: Device, *, owned: bool = True):
        _watch_destroy(buffer)
        self._buffer = buffer
        self.shape: tuple[int, ...] = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.device = device
        self.owned = owned

    # -- making ------------------------------------------------------------------------------
    @classmethod
    def from_numpy(cls, array: npt.ArrayLike, device=None, dtype: str | None = None) -> Tensor:
        """Upload ``array`` (as ``dtype``, default: its own narrowed as TF.js does) to ``device``
        (a Device, a ``wgpu.GPUDevice`` or an adapter query; default: the default adapter)."""
        a = np.asarray(array)
        want = device_dtype(dtype or dtype_of(a))
        if want not in DEVICE_DTYPES:
            raise TensorError(f"a device tensor is float32, int32 or bool; got {want} "
                              f"({'dtype argument' if dtype else f'an array of {a.dtype}'})")
        dev = get_device(device)
        arr = to_device_array(a, want)
        buf = create_buffer(dev, arr.nbytes, label="tensor", pooled=True)
        if arr.nbytes:
            with dev.lock:
                dev.queue.write_buffer(buf, 0, memoryview(arr).cast("B"))
        return cls(buf, a.shape, want, dev)

    @classmethod
    def from_buffer(cls, buffer: wgpu.GPUBuffer, shape, dtype: str, device=None) -> Tensor:
        """Wrap a caller's GPUBuffer (usage STORAGE and COPY_SRC, at least 4 bytes per element)
        holding a ``dtype`` tensor of ``shape``. The buffer stays the caller's: never freed here."""
        import wgpu

        if not isinstance(buffer, wgpu.GPUBuffer):
            raise TensorError(f"expected a wgpu.GPUBuffer, got {type(buffer).__name__}")
        if dtype not in DEVICE_DTYPES:
            raise TensorError(f"a device tensor's dtype is one of {', '.join(DEVICE_DTYPES)}, got {dtype!r}")
        try:
            shape = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise TensorError(f"shape must be a sequence of integers, got {shape!r}") from None
        if any(d < 0 for d in shape):
            raise TensorError(f"shape must not have negative dims, got {shape}")
        owner = getattr(buffer, "_device", None)       # wgpu-py keeps the buffer's device here
        dev = get_device(device) if device is not None else Device.wrap(owner)
        if owner is not None and owner is not dev.device:
            raise TensorError("the buffer belongs to another wgpu device than the one given")
        needed = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC
        if buffer.usage & needed != needed:
            raise TensorError(f"the buffer's usage must include STORAGE and COPY_SRC (has {int(buffer.usage)})")
        if buffer.size < nbytes_of(shape):
            raise TensorError(f"a {dtype} tensor of shape {list(shape)} needs {nbytes_of(shape)} bytes "
                              f"(4 per element); the buffer has {buffer.size}")
        return cls(buffer, shape, dtype, dev, owned=False)

    # -- reading -----------------------------------------------------------------------------
    @property
    def buffer(self) -> wgpu.GPUBuffer:
        """The GPU buffer (DisposedError once disposed)."""
        if self._buffer is None:
            raise DisposedError("this tensor has been disposed")
        if self._buffer.__dict__.get(_DESTROYED):
            raise DisposedError("this tensor's GPUBuffer has been destroyed (buffer.destroy())")
        return self._buffer

    @property
    def disposed(self) -> bool:
        """Whether ``dispose()`` was called."""
        return self._buffer is None

    @property
    def nbytes(self) -> int:
        """Bytes the tensor takes on the device (4 per element)."""
        return nbytes_of(self.shape)

    def numpy(self) -> np.ndarray:
        """A new host array with the tensor's value (one read-back, one host copy)."""
        import wgpu

        src, dev, n = self.buffer, self.device, self.nbytes
        if n == 0:
            return from_device_bytes(b"", self.dtype, self.shape)
        staging = dev.pool.acquire((n + 3) // 4 * 4, wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST,
                                   label="tensor read-back")
        with dev.lock:
            enc = dev.device.create_command_encoder()
            enc.copy_buffer_to_buffer(src, 0, staging, 0, n)
            dev.queue.submit([enc.finish()])
            promise = staging.map_async("READ_NOSYNC")   # written by the submit above (graph/executor.py MAP_READ)
        promise.sync_wait()
        dev.count_readback()
        try:
            return from_device_bytes(staging.read_mapped(copy=False), self.dtype, self.shape)
        finally:
            staging.unmap()
            dev.pool.release(staging)

    # -- lifetime ----------------------------------------------------------------------------
    def dispose(self) -> None:
        """Free the buffer now: back to the device's pool (a wrapped caller's buffer is only let
        go). Idempotent."""
        buf, self._buffer = self._buffer, None
        if buf is not None and self.owned:
            self.device.pool.release(buf)

    def __del__(self):
        try:
            self.dispose()
        except Exception:        # interpreter shutdown: wgpu-py releases the buffer itself
            self._buffer = None

    def __repr__(self) -> str:
        state = "disposed" if self.disposed else f"{self.nbytes} bytes"
        return f"Tensor(shape={list(self.shape)}, dtype={self.dtype}, {state}, device={self.device.name!r})"



def _watch_destroy(buffer) -> None:
    """Mark ``buffer`` when anyone calls its ``destroy()``: a submit that reads a destroyed buffer
    aborts the process (docs/lavapipe.md pitfall 4), so a Tensor checks the mark before use."""
    if "destroy" in buffer.__dict__:
        return
    ref = weakref.ref(buffer)           # no cycle: the buffer is still freed by its last reference

    def destroy() -> None:
        b = ref()
        if b is not None:
            b.__dict__[_DESTROYED] = True
            type(b).destroy(b)

    buffer.destroy = destroy


def tensor(array: npt.ArrayLike, device=None, dtype: str | None = None) -> Tensor:
    """``Tensor.from_numpy``: ``array`` uploaded to ``device``."""
    return Tensor.from_numpy(array, device, dtype)
