#!/usr/bin/env python
"""Uniforms in a uniform buffer of each step's bind group (what the runtime does) against
immediates (push constants: ``var<immediate>``, ``wgpuComputePassEncoderSetImmediates`` before
each dispatch, bind groups of the storage buffers only), for issue 9's host-cost item.

A pass of --dispatches dispatches of one small kernel (y = x * alpha + beta over --elements
floats per dispatch, each step its own slice and bind group, as a plan's steps have), encoded
with wgpu-native's C calls as graph/executor.py encodes a plan. Per way: host microseconds per
dispatch of the encoding (begin pass .. finish), and milliseconds from submit to the result
(submit, GPU, a 4-byte read back), median and minimum of --rounds rounds alternating the two
ways. The outputs are checked.

    .venv/bin/python tools/bench_immediates.py [--adapter vulkan] [--dispatches 200] [--elements 256,65536] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: an installed wgpu_runtime first

BODY = """struct P {{ n: u32, off: u32, alpha: f32, beta: f32 }}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
{decl}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {{
    let i = g.x;
    if (i < p.n) {{ y[p.off + i] = x[p.off + i] * p.alpha + p.beta; }}
}}
"""
ALPHA, BETA = 2.0, 0.5


def _device(adapter: str):
    from wgpu_runtime.device import find_adapter

    a = find_adapter(adapter)
    if "immediates" not in a.features:
        raise SystemExit(f"{a.info.get('device', adapter)} has no 'immediates' feature")
    return a, a.request_device_sync(required_features=[f for f in ("immediates",) if f in a.features],
                                    required_limits={"max-immediate-size": 16})


def measure(dev, dispatches: int, elements: int, rounds: int) -> dict:
    import wgpu
    from wgpu.backends.wgpu_native import ffi, lib

    u = wgpu.BufferUsage
    total = dispatches * elements
    xb = dev.create_buffer_with_data(data=np.arange(total, dtype=np.float32).tobytes(), usage=u.STORAGE)
    yb = dev.create_buffer(size=total * 4, usage=u.STORAGE | u.COPY_SRC | u.COPY_DST)
    params = [np.array([elements, k * elements], np.uint32).tobytes() + np.array([ALPHA, BETA], np.float32).tobytes()
              for k in range(dispatches)]
    buffers = [{"binding": 0, "resource": {"buffer": xb}}, {"binding": 1, "resource": {"buffer": yb}}]
    uniform_pipe = dev.create_compute_pipeline(layout="auto", compute={"entry_point": "main", "module": dev.create_shader_module(
        code=BODY.format(decl="@group(0) @binding(2) var<uniform> p: P;"))})
    stage = wgpu.ShaderStage.COMPUTE
    layout = dev.create_bind_group_layout(entries=[
        {"binding": 0, "visibility": stage, "buffer": {"type": "read-only-storage"}},
        {"binding": 1, "visibility": stage, "buffer": {"type": "storage"}}])
    immediate_pipe = dev.create_compute_pipeline(
        layout=dev.create_pipeline_layout(bind_group_layouts=[layout], immediate_size=16),
        compute={"entry_point": "main", "module": dev.create_shader_module(code=BODY.format(decl="var<immediate> p: P;"))})
    uniforms = [dev.create_buffer_with_data(data=p, usage=u.UNIFORM) for p in params]
    steps = {
        "uniform buffer": [(dev.create_bind_group(layout=uniform_pipe.get_bind_group_layout(0), entries=[
            *buffers, {"binding": 2, "resource": {"buffer": ub}}]), None) for ub in uniforms],
        # each step its own bind group, as a plan's steps bind their own buffers
        "immediates": [(dev.create_bind_group(layout=layout, entries=buffers), ffi.new("uint8_t[]", p)) for p in params],
    }
    pipes = {"uniform buffer": uniform_pipe, "immediates": immediate_pipe}
    descriptor = ffi.new("WGPUComputePassDescriptor *")
    groups = -(-elements // 64)

    def encode(way):
        enc = dev.create_command_encoder()
        t0 = time.perf_counter()
        h = lib.wgpuCommandEncoderBeginComputePass(enc._internal, descriptor)
        lib.wgpuComputePassEncoderSetPipeline(h, pipes[way]._internal)
        for bg, data in steps[way]:
            lib.wgpuComputePassEncoderSetBindGroup(h, 0, bg._internal, 0, ffi.NULL)
            if data is not None:
                lib.wgpuComputePassEncoderSetImmediates(h, 0, data, 16)
            lib.wgpuComputePassEncoderDispatchWorkgroups(h, groups, 1, 1)
        lib.wgpuComputePassEncoderEnd(h)
        lib.wgpuComputePassEncoderRelease(h)
        buf = enc.finish()
        return buf, (time.perf_counter() - t0) * 1e6 / dispatches

    want = np.arange(total, dtype=np.float32) * ALPHA + BETA
    encode_us = {w: [] for w in steps}
    run_ms = {w: [] for w in steps}
    for r in range(rounds + 1):       # the first round warms up
        for way in steps:
            if r == 0:      # checked: the other way's output must not be what is read
                dev.queue.write_buffer(yb, 0, np.zeros(total, np.float32).tobytes())
            buf, us = encode(way)
            t0 = time.perf_counter()
            dev.queue.submit([buf])
            dev.queue.read_buffer(yb, 0, 4)
            ms = (time.perf_counter() - t0) * 1e3
            if r == 0:
                got = np.frombuffer(dev.queue.read_buffer(yb), np.float32)
                if not np.array_equal(got, want):
                    raise SystemExit(f"{way}: wrong output")
                continue
            encode_us[way].append(us)
            run_ms[way].append(ms)
    return {way: {"encode_us_per_dispatch": statistics.median(encode_us[way]), "encode_us_min": min(encode_us[way]),
                  "run_ms": statistics.median(run_ms[way]), "run_ms_min": min(run_ms[way])} for way in steps}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default="vulkan")
    ap.add_argument("--dispatches", type=int, default=200)
    ap.add_argument("--elements", default="256,65536", help="floats per dispatch, comma separated")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    adapter, dev = _device(args.adapter)
    out = {"adapter": adapter.info.get("device", ""), "backend": adapter.info.get("backend_type", ""),
           "dispatches": args.dispatches, "results": {}}
    for n in (int(e) for e in args.elements.split(",")):
        res = out["results"][n] = measure(dev, args.dispatches, n, args.rounds)
        for way, r in res.items():
            print(f"{out['backend']} {n:6d} floats/dispatch, {way:15s}: encode {r['encode_us_per_dispatch']:5.2f} us/dispatch "
                  f"(min {r['encode_us_min']:.2f}), submit to result {r['run_ms']:7.3f} ms (min {r['run_ms_min']:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
