"""Run a plan: write the inputs (device tensors: copied on the GPU), encode every prepared dispatch
in one command encoder, submit once, read the requested outputs back through a staging buffer
(or copy them into new device tensors). All per-inference host time is spent here.

A plan keeps a small ring of staging buffers, one per inference in flight: :func:`submit` takes
one (under ``Device.lock``), :func:`wait` / :func:`wait_async` map it, copy each output once into
its result array, unmap it and give it back. Inputs and intermediate buffers are shared by the
calls in flight: the queue runs submissions in order, so call k+1's writes land after call k's
dispatches have read them.

**Encoding ahead.** A plan's dispatches and copies between them (its "body") use the same
buffers, textures and bind groups on every call, so the body's command buffer does not depend on
the call: :func:`submit` submits a body encoded earlier (``Plan.ahead``) between a small head
(inputs copied from device tensors) and tail (outputs copied to the staging buffer), then encodes
the next call's body while the GPU runs this one. The encoding leaves the path from a call's
inputs to its submit (on a real GPU it overlaps the GPU work; docs/benchmarks.md). Correct in
queue order: a body submitted later runs after the inputs written before its submit, whenever it
was encoded. ``WGPU_RUNTIME_ENCODE_AHEAD=0`` encodes every body on the call's own path instead.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import wgpu

from .. import textures
from ..dtypes import from_device_bytes
from ..errors import TensorError, WgpuRuntimeError
from ..memory import create_buffer
from ..tensor import Tensor
from .plan import Plan

RING = 4          # idle staging buffers a plan keeps (more calls in flight make more, then drop them)
# wgpu-py 0.32's map_async(READ) first submits an empty command buffer (a workaround for mapping
# a buffer no submit has written, wgpu-native issue 305); on lavapipe that submit blocks until
# the GPU work before it is done, so map_async itself would wait. Our staging buffers are always
# written by a copy in the submit just before: "READ_NOSYNC" (wgpu-py's mode without that
# submit) maps them without blocking.
MAP_READ = "READ_NOSYNC"
ENCODE_AHEAD = os.environ.get("WGPU_RUNTIME_ENCODE_AHEAD", "1").strip() != "0"


@dataclass
class Submitted:
    """One submitted inference: where its outputs will be."""
    plan: Plan
    staging: object = None          # the MAP_READ buffer its device outputs were copied into
    promise: object = None          # the staging buffer's map_async promise
    tensors: list | None = None     # on_device: the output Tensors (already complete)


def run(device, plan: Plan, feeds: dict, stats: dict | None = None, on_device: bool = False) -> list:
    """Outputs of one inference (numpy arrays, or Tensors with ``on_device``). ``stats``, when
    given, receives ``encode_s`` (host seconds spent encoding the plan's dispatches, ahead or
    not) and ``encode_waited_s`` (host seconds of encoding between writing the inputs and the
    submit: the head, the tail, and the body unless it was encoded ahead)."""
    with device.lock:
        sub = submit(device, plan, feeds, on_device, stats)
    return wait(device, sub)


def submit(device, plan: Plan, feeds: dict, on_device: bool = False, stats: dict | None = None,
           request_map: bool = True) -> Submitted:
    """Write the inputs, submit one inference (its body encoded ahead when there is one, see the
    module's docstring), request the map of its staging buffer (``request_map=False``:
    :func:`wait_async` requests it, in the event loop's thread), then encode the plan's next body.
    Call it holding ``device.lock``. ``feeds``: placeholder -> array in device layout
    (dtypes.to_device_array) or a Tensor of this device."""
    if on_device:
        _check_host_outputs(plan)
    queue = device.queue
    _write_inputs(queue, plan, feeds)
    t0 = time.perf_counter()
    body, body_s = (plan.ahead.pop(), None) if plan.ahead else _encode_body(device, plan)
    buffers = []
    if any(isinstance(feeds[name], Tensor) for name in plan.inputs):
        head = device.device.create_command_encoder()
        _copy_inputs(head, plan, feeds)
        buffers.append(head.finish())
    if body is not None:
        buffers.append(body)
    sub = Submitted(plan)
    if on_device or plan.staging is not None:
        tail = device.device.create_command_encoder()
        if on_device:
            sub.tensors = _copy_to_tensors(device, tail, plan)
        else:
            sub.staging = _acquire_staging(device, plan)
            _copy_outputs(tail, plan, sub.staging)
        buffers.append(tail.finish())
    waited_s = time.perf_counter() - t0
    queue.submit(buffers)
    if sub.staging is not None and request_map:
        sub.promise = sub.staging.map_async(MAP_READ)
    if ENCODE_AHEAD:
        try:
            ahead, ahead_s = _encode_body(device, plan)
        except Exception:       # this call is submitted: the next call encodes inline and raises it
            ahead, ahead_s = None, None
        if ahead is not None:
            plan.ahead.append(ahead)
        body_s = ahead_s if body_s is None else body_s
    if stats is not None:
        stats["encode_s"] = body_s or 0.0
        stats["encode_waited_s"] = waited_s
    return sub


def _encode_body(device, plan: Plan):
    """(the plan's body as a finished command buffer, or None for a plan without steps; the
    host seconds it took)."""
    if not plan.passes:
        return None, 0.0
    t0 = time.perf_counter()
    enc = device.device.create_command_encoder()
    _encode(enc, plan)
    return enc.finish(), time.perf_counter() - t0


def _encode(enc, plan: Plan) -> None:
    """The plan's steps into encoder ``enc``: its compute passes of dispatches and the copies
    into texture operands between them (Plan.passes; a copy's C structs prepared by the
    planner)."""
    for part in plan.passes:
        if isinstance(part, list):
            _encode_pass(enc, part)
        else:
            textures.encode_prepared(enc, part.copies)


def _encode_pass(enc, steps) -> None:
    """One compute pass: set_pipeline (when it changes), set_bind_group, dispatch_workgroups for
    every step, as wgpu-native C calls on the objects' handles, the pass's begin and end too:
    wgpu-py's wrappers add an error-capture proxy and a cffi array or struct per call (dispatches
    1.4-2.4 µs each instead of 5.5-9.9 on lavapipe / llvmpipe, docs/benchmarks.md 2026-12-04; a
    pass's begin and end about 8 µs instead of 2). Errors are not lost: wgpu-native records a
    pass's errors and wgpu-py raises them at the encoder's ``finish()``."""
    from wgpu.backends.wgpu_native import ffi, lib

    h, null, prev = lib.wgpuCommandEncoderBeginComputePass(enc._internal, _pass_descriptor()), ffi.NULL, None
    try:
        set_pipeline, set_bind_group = lib.wgpuComputePassEncoderSetPipeline, lib.wgpuComputePassEncoderSetBindGroup
        dispatch = lib.wgpuComputePassEncoderDispatchWorkgroups
        for st in steps:
            if st.pipeline is not prev:
                set_pipeline(h, st.pipeline._internal)
                prev = st.pipeline
            set_bind_group(h, 0, st.bind_group._internal, 0, null)
            dispatch(h, *st.grid)
        lib.wgpuComputePassEncoderEnd(h)
    finally:
        lib.wgpuComputePassEncoderRelease(h)


@lru_cache(maxsize=1)
def _pass_descriptor():
    """The one WGPUComputePassDescriptor every pass of ours begins with (no label, no timestamp
    writes), built once."""
    from wgpu.backends.wgpu_native import ffi
    from wgpu.backends.wgpu_native._api import new_struct_p, to_c_string_view

    return new_struct_p("WGPUComputePassDescriptor *", label=to_c_string_view(""), timestampWrites=ffi.NULL)


def wait(device, sub: Submitted) -> list:
    """Block until ``sub``'s outputs are mapped; return them (the device lock is not held)."""
    if sub.promise is not None:
        try:
            sub.promise.sync_wait()
        except Exception as e:      # a device lost or a destroyed buffer: no usable result
            _drop_staging(device, sub)
            raise WgpuRuntimeError(f"reading the outputs back failed: {e}") from None
    return _results(device, sub)


async def wait_async(device, sub: Submitted) -> list:
    """Await ``sub``'s outputs. Cancelled while waiting: its staging buffer goes back to the
    plan's ring once the map completes, and CancelledError propagates."""
    if sub.staging is not None and sub.promise is None:     # its promise calls back into this loop
        sub.promise = sub.staging.map_async(MAP_READ)
    if sub.promise is not None:
        try:
            await sub.promise
        except asyncio.CancelledError:
            _abandon(device, sub)
            raise
        except Exception as e:
            _drop_staging(device, sub)
            raise WgpuRuntimeError(f"reading the outputs back failed: {e}") from None
    return _results(device, sub)


def run_profiled(device, plan: Plan, feeds: dict, trace: dict | None = None) -> tuple[list[np.ndarray], list[float]]:
    """Like :func:`run`, one compute pass per dispatch with timestamp queries around it.
    Returns the outputs and each step's GPU time in milliseconds (empty when the device has no
    timestamp queries). ``trace``, when given, receives ``phases``: [(name, start, seconds)] of
    the host work (perf_counter clock) and ``gpu_begin_ns``: each step's start timestamp."""
    queue = device.queue
    stamped = device.has_timestamps
    phases = []
    with device.lock:
        t0 = time.perf_counter()
        _write_inputs(queue, plan, feeds)
        t1 = time.perf_counter()
        phases.append(("write inputs", t0, t1 - t0))
        n = len(plan.steps) if stamped else 0
        if n:
            qs = device.device.create_query_set(type=wgpu.QueryType.timestamp, count=2 * n)
            resolve = device.device.create_buffer(size=16 * n, usage=wgpu.BufferUsage.QUERY_RESOLVE
                                                  | wgpu.BufferUsage.COPY_SRC)
        enc = device.device.create_command_encoder()
        _copy_inputs(enc, plan, feeds)
        for i, st in enumerate(plan.steps):
            if st.pipeline is None:     # a copy, between two empty passes taking its timestamps
                enc.begin_compute_pass(timestamp_writes={"query_set": qs, "beginning_of_pass_write_index": 2 * i}
                                       if n else None).end()
                textures.encode_prepared(enc, st.copies)
                enc.begin_compute_pass(timestamp_writes={"query_set": qs, "end_of_pass_write_index": 2 * i + 1}
                                       if n else None).end()
                continue
            cpass = enc.begin_compute_pass(timestamp_writes={"query_set": qs, "beginning_of_pass_write_index": 2 * i,
                                                             "end_of_pass_write_index": 2 * i + 1} if n else None)
            cpass.set_pipeline(st.pipeline)
            cpass.set_bind_group(0, st.bind_group)
            cpass.dispatch_workgroups(*st.grid)
            cpass.end()
        if n:
            enc.resolve_query_set(qs, 0, 2 * n, resolve, 0)
        sub = Submitted(plan)
        if plan.staging is not None:
            sub.staging = _acquire_staging(device, plan)
            _copy_outputs(enc, plan, sub.staging)
        buffer = enc.finish()
        t2 = time.perf_counter()
        phases.append(("encode", t1, t2 - t1))
        queue.submit([buffer])
        if sub.staging is not None:
            sub.promise = sub.staging.map_async(MAP_READ)
        t3 = time.perf_counter()
        phases.append(("submit", t2, t3 - t2))
    outs = wait(device, sub)
    with device.lock:
        stamps = np.frombuffer(queue.read_buffer(resolve), dtype=np.uint64)[: 2 * n] if n else np.zeros(0, np.uint64)
    phases.append(("read back", t3, time.perf_counter() - t3))
    period = 1.0  # ns per tick (WebGPU timestamps are in nanoseconds)
    times = [(int(stamps[2 * i + 1]) - int(stamps[2 * i])) * period / 1e6 for i in range(n)]
    if trace is not None:
        trace["phases"] = phases
        trace["gpu_begin_ns"] = [int(stamps[2 * i]) for i in range(n)]
    return outs, times


# -- inputs ------------------------------------------------------------------------------------
def _write_inputs(queue, plan: Plan, feeds: dict) -> None:
    """Host arrays (already in device layout, see dtypes.to_device_array) -> the plan's inputs."""
    for name, buf in plan.inputs.items():
        arr = feeds[name]
        if not isinstance(arr, Tensor) and arr.nbytes:
            queue.write_buffer(buf.gpu, 0, memoryview(arr).cast("B"))


def _copy_inputs(enc, plan: Plan, feeds: dict) -> None:
    """Device tensors -> the plan's inputs, a GPU copy each (no host round trip)."""
    for name, buf in plan.inputs.items():
        t = feeds[name]
        if isinstance(t, Tensor) and buf.nbytes:
            enc.copy_buffer_to_buffer(t.buffer, 0, buf.gpu, 0, buf.nbytes)


# -- outputs -----------------------------------------------------------------------------------
def _check_host_outputs(plan: Plan) -> None:
    for t in plan.outputs:
        if t.value is not None and np.asarray(t.value).dtype.kind not in "biuf":
            raise TensorError(f"an output of dtype {t.dtype} lives on the host only: it cannot be a device tensor")


def _copy_to_tensors(device, enc, plan: Plan) -> list[Tensor]:
    """Each output copied into a new buffer the caller owns (not the plan's reused temps)."""
    out = []
    for t in plan.outputs:
        if t.value is not None:       # folded on the host at plan time
            out.append(Tensor.from_numpy(t.value, device, t.dtype))
            continue
        buf = create_buffer(device, t.buf.nbytes, label="output tensor", pooled=True)
        if t.buf.nbytes:
            enc.copy_buffer_to_buffer(t.buf.gpu, 0, buf, 0, t.buf.nbytes)
        out.append(Tensor(buf, t.shape, t.dtype, device))
    return out


def _copy_outputs(enc, plan: Plan, staging) -> None:
    for t, off in zip(plan.outputs, plan.staging_offsets):
        if off is not None:
            n = max(4, t.buf.nbytes)
            enc.copy_buffer_to_buffer(t.buf.gpu, 0, staging, off, n)


def _results(device, sub: Submitted) -> list:
    if sub.tensors is not None:
        return sub.tensors
    plan, staging = sub.plan, sub.staging
    try:
        data = staging.read_mapped(copy=False) if staging is not None else None
        if data is not None:
            device.count_readback()
        results = []
        for t, off in zip(plan.outputs, plan.staging_offsets):
            if off is None:
                results.append(np.array(t.value, copy=True))
            else:       # the one host copy: mapped memory -> the result array
                results.append(from_device_bytes(data[off: off + t.buf.nbytes], t.dtype, t.shape))
        del data
    finally:
        if staging is not None:     # ours alone until it is back in the ring: no lock needed
            staging.unmap()
            _release_staging(plan, staging)
    return results


# -- the staging ring --------------------------------------------------------------------------
def _acquire_staging(device, plan: Plan):
    """An idle staging buffer of ``plan`` (a new one when all are in flight). Under device.lock."""
    try:
        return plan.staging_ring.pop()      # list.pop / append are atomic: returns need no lock
    except IndexError:
        pass
    return device.device.create_buffer(size=plan.staging.size, label="outputs",
                                       usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST)


def _release_staging(plan: Plan, staging) -> None:
    """Back to the ring (unmapped); beyond RING idle buffers, the buffer is destroyed."""
    if len(plan.staging_ring) < RING:
        plan.staging_ring.append(staging)
    else:
        staging.destroy()


def release(device, sub: Submitted | None) -> None:
    """Give back the staging buffer of a submitted call whose outputs nobody will read (its map
    not requested)."""
    if sub is not None and sub.staging is not None and sub.promise is None:
        _release_staging(sub.plan, sub.staging)


def _drop_staging(device, sub: Submitted) -> None:
    with device.lock:
        if sub.staging.map_state == "mapped":
            sub.staging.unmap()
        sub.staging.destroy()


def _abandon(device, sub: Submitted) -> None:
    """A cancelled call: unmap its staging buffer when the pending map completes, and give it back."""
    staging = sub.staging

    def done(_=None):
        if staging.map_state == "mapped":
            staging.unmap()
            _release_staging(sub.plan, staging)
        else:
            staging.destroy()

    try:
        sub.promise.then(done, lambda _e: done())
    except RuntimeError:        # no event loop to call back: the map resolves, the buffer is let go
        pass
