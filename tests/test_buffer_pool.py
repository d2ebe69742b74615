"""The device's pool of recycled buffers (buffer_pool.py): freed device tensors and read-back
buffers are reused by size, never with stale contents, never after a caller destroyed them, and
the pool stays within its byte budget.

Oracle: the numpy arrays the tensors were made from (bit for bit: uploads and read-backs copy
bytes, no arithmetic)."""
from __future__ import annotations

import gc

import numpy as np
import pytest
import wgpu

import wgpu_runtime as wr
from wgpu_runtime.buffer_pool import BufferPool
from fixtures.tiny_models import tiny_model

STORAGE = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_DST | wgpu.BufferUsage.COPY_SRC


def test_freed_tensors_are_reused_with_fresh_contents(device):
    pool = device.pool
    a = np.arange(1000, dtype=np.float32)
    t = wr.tensor(a, device=device)
    first = t.buffer
    np.testing.assert_array_equal(t.numpy(), a)
    t.dispose()
    reused = pool.reused
    b = np.full(1000, -3.5, np.float32)
    u = wr.tensor(b, device=device)
    assert u.buffer is first and pool.reused == reused + 1     # the same buffer, taken from the pool
    np.testing.assert_array_equal(u.numpy(), b)                # holding the new values
    del u
    gc.collect()
    v = wr.tensor(a[::-1].copy(), device=device)               # dropped, not disposed: reused too
    assert v.buffer is first
    np.testing.assert_array_equal(v.numpy(), a[::-1])


def test_model_outputs_on_the_device_reuse_buffers(device, tmp_path):
    model = wr.load_graph_model(tiny_model(tmp_path / "tiny"), adapter=device)
    xs = [np.random.default_rng(s).uniform(-1, 1, (3, 8)).astype(np.float32) for s in range(5)]
    want = [model.predict(x) for x in xs]
    reused = device.pool.reused
    for x, w in zip(xs, want):
        t = model.predict(x, on_device=True)
        np.testing.assert_array_equal(t.numpy(), w)
        t.dispose()
    assert device.pool.reused > reused
    model.dispose()


def test_a_buffer_destroyed_through_a_stale_reference_is_not_reused(device):
    t = wr.tensor(np.ones(64, np.float32), device=device)
    stale = t.buffer
    t.dispose()
    stale.destroy()                 # the caller kept the buffer and destroyed it: never handed out again
    u = wr.tensor(np.zeros(64, np.float32), device=device)
    assert u.buffer is not stale
    np.testing.assert_array_equal(u.numpy(), np.zeros(64, np.float32))


def test_the_pool_keeps_within_its_budget(device):
    pool = BufferPool(device.device, max_bytes=4096)
    bufs = [pool.acquire(1024, STORAGE) for _ in range(6)]
    for b in bufs:
        pool.release(b)
    assert pool.idle_bytes == 4096                 # the two oldest were destroyed
    assert pool.acquire(1024, STORAGE) is bufs[-1]      # the most recently freed first
    assert pool.acquire(2048, STORAGE) not in bufs      # another size: a new buffer
    off = BufferPool(device.device, max_bytes=0)   # WGPU_RUNTIME_POOL_MB=0
    off.release(off.acquire(1024, STORAGE))
    assert off.idle_bytes == 0
    pool.clear()
    assert pool.idle_bytes == 0


def test_pool_size_from_the_environment(device, monkeypatch):
    monkeypatch.setenv("WGPU_RUNTIME_POOL_MB", "3")
    assert BufferPool(device.device).max_bytes == 3 << 20
    monkeypatch.setenv("WGPU_RUNTIME_POOL_MB", "lots")
    with pytest.raises(ValueError, match="WGPU_RUNTIME_POOL_MB"):
        BufferPool(device.device)
