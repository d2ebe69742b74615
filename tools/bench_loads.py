#!/usr/bin/env python
"""What one vec4 load costs a compute shader, by where the data lives: a storage buffer (runtime
sized and fixed size), a uniform buffer, a sampled texture and a read-only storage texture
(textureLoad). Every lane reads its own address (the pattern of a matmul's per-lane operand
loads). Prints billions of vec4 loads per second, median of --runs; rounds interleave the kinds
so that drift hits all alike. Last, the arithmetic ceiling: GFLOP/s of a kernel of vec4 FMAs with
no loads; and what a vec4 store costs, into a storage buffer and into a storage texture.

    .venv/bin/python tools/bench_loads.py [--adapter vulkan] [--rounds 3] [--runs 5]

On Mesa 22.3 lavapipe a storage-buffer load with a per-lane address is a loop over the lanes;
textures and uniform buffers are not (docs/lavapipe.md). A storage-buffer store is such a loop
too, and still the fastest store there is.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1]))  # last: an installed wgpu_runtime first
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.dispatch import dispatch_once  # noqa: E402

W, H = 1024, 64            # 64K vec4s = 1 MiB of data
INVOCATIONS = 16384
LOADS = 4096               # per invocation
DECL = {
    "storage": "@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;\n"
               "fn ld(i: u32) -> vec4<f32> { return src[i]; }",
    "storage, fixed size": "@group(0) @binding(0) var<storage, read> src: array<vec4<f32>, 65536>;\n"
                           "fn ld(i: u32) -> vec4<f32> { return src[i & 65535u]; }",
    "uniform": "@group(0) @binding(0) var<uniform> src: array<vec4<f32>, 4096>;\n"
               "fn ld(i: u32) -> vec4<f32> { return src[i & 4095u]; }",
    "texture": "@group(0) @binding(0) var src: texture_2d<f32>;\n"
               "fn ld(i: u32) -> vec4<f32> { return textureLoad(src, vec2<u32>(i & 1023u, (i >> 10u) & 63u), 0); }",
    "storage texture, read": "@group(0) @binding(0) var src: texture_storage_2d<rgba32float, read>;\n"
                             "fn ld(i: u32) -> vec4<f32> { return textureLoad(src, vec2<u32>(i & 1023u, (i >> 10u) & 63u)); }",
}
BODY = """
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var acc = vec4<f32>(0.0);
  var i = g.x * 17u;
  for (var k = 0u; k < 1024u; k++) {
    acc += ld(i); acc += ld(i + 64u); acc += ld(i + 128u); acc += ld(i + 192u);
    i = (i + 256u) & 65535u;
  }
  out[g.x] = acc;
}"""


def kernel(dev, kind: str):
    import wgpu

    usage = wgpu.BufferUsage
    data = np.ones((H * W, 4), np.float32)
    out = dev.create_buffer(size=INVOCATIONS * 16, usage=usage.STORAGE | usage.COPY_SRC)
    if kind in ("storage", "storage, fixed size"):
        resource = {"buffer": dev.create_buffer_with_data(data=data, usage=usage.STORAGE)}
    elif kind == "uniform":
        resource = {"buffer": dev.create_buffer_with_data(data=data[:4096], usage=usage.UNIFORM)}
    else:
        binding = wgpu.TextureUsage.STORAGE_BINDING if kind.startswith("storage texture") else wgpu.TextureUsage.TEXTURE_BINDING
        tex = dev.create_texture(size=(W, H, 1), format="rgba32float", usage=binding | wgpu.TextureUsage.COPY_DST)
        dev.queue.write_texture({"texture": tex}, data, {"bytes_per_row": W * 16, "rows_per_image": H}, (W, H, 1))
        resource = tex.create_view()
    module = dev.create_shader_module(code=DECL[kind] + BODY)
    pipe = dev.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"})
    group = dev.create_bind_group(layout=pipe.get_bind_group_layout(0),
                                  entries=[{"binding": 0, "resource": resource}, {"binding": 1, "resource": {"buffer": out}}])

    def run() -> np.ndarray:
        dispatch_once(dev, pipe, group, INVOCATIONS // 64)
        return np.frombuffer(dev.queue.read_buffer(out), np.float32)
    return run


FMA = """
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var a = vec4<f32>(f32(g.x) * 1e-6); var a2 = a + 1.0; var a3 = a + 2.0; var a4 = a + 3.0;
  let b = vec4<f32>(0.999); let c = vec4<f32>(1e-3);
  for (var i = 0u; i < 4096u; i++) {
    a = fma(a, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c); a4 = fma(a4, b, c);
  }
  out[g.x] = a + a2 + a3 + a4;
}"""


def _median_seconds(dev, pipe, group, workgroups: int, done, runs: int) -> float:
    """Median wall time of one dispatch of ``pipe`` (after one untimed), waiting by reading 16
    bytes of buffer ``done`` back."""
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        dispatch_once(dev, pipe, group, workgroups)
        dev.queue.read_buffer(done, 0, 16)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fma_gflops(dev, runs: int) -> float:
    """The arithmetic ceiling: four independent vec4 FMA chains per lane, no loads."""
    import wgpu

    out = dev.create_buffer(size=INVOCATIONS * 4 * 16, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC)
    module = dev.create_shader_module(code=FMA.replace("@group(0) @binding(1)", "@group(0) @binding(0)"))
    pipe = dev.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"})
    group = dev.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=[{"binding": 0, "resource": {"buffer": out}}])
    seconds = _median_seconds(dev, pipe, group, INVOCATIONS * 4 // 64, out, runs)
    return INVOCATIONS * 4 * 4096 * 4 * 4 * 2 / seconds / 1e9


STORE = {
    "storage buffer": ("@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;\n"
                       "fn st(i: u32, v: vec4<f32>) { out[i] = v; }"),
    "storage texture": ("@group(0) @binding(0) var out: texture_storage_2d<rgba32float, write>;\n"
                        "fn st(i: u32, v: vec4<f32>) { textureStore(out, vec2<u32>(i & 1023u, i >> 10u), v); }"),
}
STORE_BODY = """
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  for (var k = 0u; k < 8u; k++) { st(g.x * 8u + k, vec4<f32>(f32(g.x), f32(k), 1.0, 2.0)); }
}"""


def store_rate(dev, kind: str, runs: int) -> float:
    """Billions of vec4 stores per second, every lane writing its own 8 vec4s (a kernel's
    epilogue), into 1M vec4s (16 MiB) of a storage buffer or an rgba32float storage texture."""
    import wgpu

    n = 1024 * 1024
    if kind == "storage buffer":
        resource = {"buffer": dev.create_buffer(size=n * 16, usage=wgpu.BufferUsage.STORAGE)}
    else:
        tex = dev.create_texture(size=(1024, n // 1024, 1), format="rgba32float",
                                 usage=wgpu.TextureUsage.STORAGE_BINDING)
        resource = tex.create_view()
    flag = dev.create_buffer(size=16, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC)
    pipe = dev.create_compute_pipeline(layout="auto", compute={
        "module": dev.create_shader_module(code=STORE[kind] + STORE_BODY), "entry_point": "main"})
    group = dev.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=[{"binding": 0, "resource": resource}])
    return n / _median_seconds(dev, pipe, group, n // 8 // 64, flag, runs) / 1e9


def main(argv=None) -> int:
    from wgpu_runtime import get_device

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default="vulkan")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    dev = get_device(args.adapter)
    print(f"# {dev.name}")
    runs = {kind: kernel(dev.device, kind) for kind in DECL}
    rates: dict[str, list[float]] = {kind: [] for kind in DECL}
    for kind, run in runs.items():
        assert np.all(run()[:4] == LOADS), kind          # every load read a 1.0: the sum is the count
    for _ in range(args.rounds):
        for kind, run in runs.items():
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            rates[kind].append(INVOCATIONS * LOADS / statistics.median(times) / 1e9)
    for kind, r in rates.items():
        print(f"{kind:22s} {statistics.median(r):6.3f} G vec4 loads/s  (rounds: {', '.join(f'{x:.3f}' for x in r)})")
    print(f"{'FMA only (no loads)':22s} {fma_gflops(dev.device, args.runs):6.1f} GFLOP/s")
    for kind in STORE:
        print(f"{kind + ' stores':22s} {store_rate(dev.device, kind, args.runs):6.3f} G vec4 stores/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
