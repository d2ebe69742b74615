"""Run a plan: write the inputs, encode every prepared dispatch in one command encoder, submit
once, read the requested outputs back through one staging buffer. All per-inference host time
is spent here."""
from __future__ import annotations

import time

import numpy as np
import wgpu

from ..dtypes import from_device_bytes
from .plan import Plan


def run(device, plan: Plan, feeds: dict[str, np.ndarray], stats: dict | None = None) -> list[np.ndarray]:
    """Outputs of one inference. ``stats``, when given, receives ``encode_s``: host seconds spent
    encoding the dispatches (the per-dispatch host overhead)."""
    queue = device.queue
    _write_inputs(queue, plan, feeds)
    t0 = time.perf_counter()
    enc = device.device.create_command_encoder()
    if plan.steps:
        cpass = enc.begin_compute_pass()
        for st in plan.steps:
            cpass.set_pipeline(st.pipeline)
            cpass.set_bind_group(0, st.bind_group)
            cpass.dispatch_workgroups(*st.grid)
        cpass.end()
    _copy_outputs(enc, plan)
    buffer = enc.finish()
    if stats is not None:
        stats["encode_s"] = time.perf_counter() - t0
    queue.submit([buffer])
    return _read_outputs(plan)


def run_profiled(device, plan: Plan, feeds: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
    """Like :func:`run`, one compute pass per dispatch with timestamp queries around it.
    Returns the outputs and each step's GPU time in milliseconds."""
    queue = device.queue
    _write_inputs(queue, plan, feeds)
    n = len(plan.steps)
    qs = device.device.create_query_set(type=wgpu.QueryType.timestamp, count=max(2, 2 * n))
    resolve = device.device.create_buffer(size=16 * max(1, n), usage=wgpu.BufferUsage.QUERY_RESOLVE
                                          | wgpu.BufferUsage.COPY_SRC)
    enc = device.device.create_command_encoder()
    for i, st in enumerate(plan.steps):
        cpass = enc.begin_compute_pass(timestamp_writes={"query_set": qs, "beginning_of_pass_write_index": 2 * i,
                                                         "end_of_pass_write_index": 2 * i + 1})
        cpass.set_pipeline(st.pipeline)
        cpass.set_bind_group(0, st.bind_group)
        cpass.dispatch_workgroups(*st.grid)
        cpass.end()
    if n:
        enc.resolve_query_set(qs, 0, 2 * n, resolve, 0)
    _copy_outputs(enc, plan)
    queue.submit([enc.finish()])
    outs = _read_outputs(plan)
    stamps = np.frombuffer(queue.read_buffer(resolve), dtype=np.uint64)[: 2 * n] if n else np.zeros(0, np.uint64)
    period = 1.0  # ns per tick (WebGPU timestamps are in nanoseconds)
    times = [(int(stamps[2 * i + 1]) - int(stamps[2 * i])) * period / 1e6 for i in range(n)]
    return outs, times


def _write_inputs(queue, plan: Plan, feeds: dict[str, np.ndarray]) -> None:
    """feeds: placeholder name -> array already in device layout (see dtypes.to_device_array)."""
    for name, buf in plan.inputs.items():
        arr = feeds[name]
        if arr.nbytes:
            queue.write_buffer(buf.gpu, 0, memoryview(arr).cast("B"))


def _copy_outputs(enc, plan: Plan) -> None:
    for t, off in zip(plan.outputs, plan.staging_offsets):
        if off is not None:
            n = max(4, t.buf.nbytes)
            enc.copy_buffer_to_buffer(t.buf.gpu, 0, plan.staging, off, n)


def _read_outputs(plan: Plan) -> list[np.ndarray]:
    results = []
    if plan.staging is not None:
        plan.staging.map_sync(wgpu.MapMode.READ)
        data = plan.staging.read_mapped(copy=True)
        plan.staging.unmap()
    for t, off in zip(plan.outputs, plan.staging_offsets):
        if off is None:
            results.append(np.array(t.value, copy=True))
        else:
            results.append(from_device_bytes(data[off: off + t.buf.nbytes], t.dtype, t.shape))
    return results
