"""Tensors of the dynamic executor and the device memory they live in.

A :class:`Value` is one tensor as the dynamic executor sees it: known on the host (``host``: a
numpy array; weights, shape arithmetic, loop counters...), on the GPU (``dev``: a
:class:`DevBuf`), or both; or an opaque object (``obj``: a TensorList, a TensorArray or hash
table handle). Host values are uploaded at most once, device values read back only when a host
step consumes them.

:class:`Stream` owns the device side: a pool of storage buffers (reused as soon as the tensor
holding one dies: commands run in recording order, so a later writer never overtakes an earlier
reader), one open command encoder that GPU work -- uploads included -- is recorded into, and the
read-back path, which is the only place that submits.
"""
from __future__ import annotations

import weakref

import numpy as np
import wgpu

from ... import textures
from ...dtypes import dtype_of, from_device_bytes, host_array, to_device_array
from ...memory import nbytes_of


class DevBuf:
    """A pooled storage buffer holding one tensor; returned to its pool when garbage."""

    __slots__ = ("gpu", "size", "_pool", "__weakref__")

    def __init__(self, gpu, size: int, pool=None):
        self.gpu = gpu
        self.size = size
        self._pool = pool

    def __del__(self):
        pool = self._pool and self._pool()
        if pool is not None:
            pool.release(self.gpu, self.size)


class Value:
    """One tensor of a dynamic execution (see the module docstring)."""

    __slots__ = ("shape", "dtype", "host", "dev", "obj", "weight_key", "const")

    def __init__(self, shape, dtype: str, host=None, dev: DevBuf | None = None, obj=None,
                 weight_key: str | None = None, const: bool = False):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.host = host            # the value on the host (may be a read-back copy)
        self.dev = dev              # the value on the GPU (may be an upload of ``host``)
        self.obj = obj
        self.weight_key = weight_key
        # a constant or shape arithmetic (not derived from the model's inputs' data): ops whose
        # inputs are all constants are folded on the host, as the static planner folds them
        self.const = const

    @classmethod
    def of(cls, array, weight_key=None, const: bool = True) -> "Value":
        a = host_array(array)
        return cls(a.shape, dtype_of(a), host=a, weight_key=weight_key, const=const)

    @classmethod
    def opaque(cls, obj, dtype: str = "variant") -> "Value":
        return cls((), dtype, obj=obj, const=False)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        where = "host" if self.host is not None else "obj" if self.obj is not None else "gpu"
        return f"Value({self.shape}, {self.dtype}, {where})"


def _bucket(nbytes: int) -> int:
    """Pool size class: powers of two up to 4 MiB, then multiples of 4 MiB (at least 256 B)."""
    n = max(256, (nbytes + 15) // 16 * 16)
    if n <= 4 << 20:
        return 1 << (n - 1).bit_length()
    return -(-n // (4 << 20)) * (4 << 20)


class Stream:
    """Buffer pool + one recording command encoder + batched read-back for one device."""

    KEEP_PER_SIZE = 64     # free buffers kept per size class

    def __init__(self, device):
        self.device = device
        self._free: dict[int, list] = {}     # size class -> free buffers
        self._enc = None
        self._pass = None
        self._staging = None
        self.dispatches = 0
        self.submits = 0
        self.readback_bytes = 0
        self.created = 0            # buffers created so far (the pool's misses)
        self._self_ref = weakref.ref(self)

    # -- buffers -------------------------------------------------------------------------------
    def _create(self, size: int):
        self.created += 1
        u = wgpu.BufferUsage
        return self.device.device.create_buffer(size=size, usage=u.STORAGE | u.COPY_DST | u.COPY_SRC,
                                                label="dynamic")

    def alloc(self, nbytes: int) -> DevBuf:
        """A buffer for a tensor (possibly one whose previous tensor recorded commands still read:
        they run first)."""
        size = _bucket(nbytes)
        free = self._free.get(size)
        return DevBuf(free.pop() if free else self._create(size), size, self._self_ref)

    def release(self, gpu, size: int) -> None:
        free = self._free.setdefault(size, [])
        if len(free) < self.KEEP_PER_SIZE:
            free.append(gpu)

    def upload(self, array: np.ndarray, dtype: str) -> DevBuf:
        """A device copy of a host array, recorded in order with the GPU work: the bytes go to a
        transient staging buffer and are copied by the encoder (``queue.write_buffer`` would run
        before everything recorded so far, so the pooled target could still be in use)."""
        arr = to_device_array(array, dtype)
        buf = self.alloc(arr.nbytes)
        if arr.nbytes:
            src = self.device.device.create_buffer_with_data(
                data=memoryview(np.require(arr, requirements="C")).cast("B"), usage=wgpu.BufferUsage.COPY_SRC)
            self.copy(src, 0, buf.gpu, 0, arr.nbytes)
        return buf

    # -- recording -----------------------------------------------------------------------------
    def _encoder(self):
        if self._enc is None:
            self._enc = self.device.device.create_command_encoder()
        return self._enc

    def dispatch(self, pipeline, bind_group, grid) -> None:
        if self._pass is None:
            self._pass = self._encoder().begin_compute_pass()
        self._pass.set_pipeline(pipeline)
        self._pass.set_bind_group(0, bind_group)
        self._pass.dispatch_workgroups(*grid)
        self.dispatches += 1

    def copy(self, src, src_offset: int, dst, dst_offset: int, nbytes: int) -> None:
        if self._pass is not None:
            self._pass.end()
            self._pass = None
        self._encoder().copy_buffer_to_buffer(src, src_offset, dst, dst_offset, nbytes)

    def copy_to_texture(self, src, src_offset: int, tex, texels: int) -> None:
        """Copy ``texels`` vec4s of buffer ``src`` into texture operand ``tex`` (textures.py)."""
        if self._pass is not None:
            self._pass.end()
            self._pass = None
        textures.encode_copy(self._encoder(), src, src_offset, tex, texels)

    def flush(self) -> None:
        """Submit what was recorded."""
        if self._pass is not None:
            self._pass.end()
            self._pass = None
        if self._enc is not None:
            self.device.queue.submit([self._enc.finish()])
            self._enc = None
            self.submits += 1

    # -- read-back -----------------------------------------------------------------------------
    def read(self, values: list[Value]) -> list[np.ndarray]:
        """Host arrays of device values: one submit and one mapped staging buffer for all."""
        offsets, total = [], 0
        for v in values:
            offsets.append(total)
            total += max(4, nbytes_of(v.shape))
        if self._staging is None or self._staging.size < total:
            self._staging = self.device.device.create_buffer(
                size=_bucket(total), usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST,
                label="dynamic-readback")
        for v, off in zip(values, offsets):
            n = nbytes_of(v.shape)
            if n:
                self.copy(v.dev.gpu, 0, self._staging, off, n)
        self.flush()
        self._staging.map_sync(wgpu.MapMode.READ, 0, total)
        data = self._staging.read_mapped(0, total, copy=True)
        self._staging.unmap()
        self.readback_bytes += total
        return [from_device_bytes(data[off: off + nbytes_of(v.shape)], v.dtype, v.shape)
                for v, off in zip(values, offsets)]
