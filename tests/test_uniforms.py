"""Uniforms are declared once, in a kernel's ``struct Params``: the layout computed from the
declaration must be the one the GPU reads (checked by a kernel echoing every field back, on
each adapter), values are packed by name and declared type, and every kernel's Params parses."""
import re
import struct
from importlib import resources

import numpy as np
import pytest
import wgpu

from fixtures.dispatch import dispatch_once
from wgpu_runtime import pipelines
from wgpu_runtime.ops import conv_uniform, fused
from wgpu_runtime.uniforms import UniformError, layout_of_source, uniform_layout

# Every kind of field the packer supports, with padding WGSL's rules insert: a vec2 after a
# scalar (8-byte alignment), a vec4 (16), an array of a nested struct whose @align(16) makes the
# array's stride 16 (what the uniform address space needs), a scalar after the array.
ECHO = """
struct Dim { @align(16) size: u32, stride: i32 }
struct Params {
    n: u32,
    scale: f32,
    offset: vec2<f32>,
    shift: i32,
    lanes: vec4<u32>,
    dims: array<Dim, 3>,
    last: f32,
}
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(1)
fn main() {
    out[0] = p.n;
    out[1] = bitcast<u32>(p.scale);
    out[2] = bitcast<u32>(p.offset.x);
    out[3] = bitcast<u32>(p.offset.y);
    out[4] = bitcast<u32>(p.shift);
    for (var k = 0u; k < 4u; k++) { out[5u + k] = p.lanes[k]; }
    for (var k = 0u; k < 3u; k++) {
        out[9u + 2u * k] = p.dims[k].size;
        out[10u + 2u * k] = bitcast<u32>(p.dims[k].stride);
    }
    out[15] = bitcast<u32>(p.last);
}
"""

VALUES = {"n": 7, "scale": 2, "offset": (0.5, -1.25), "shift": -3, "lanes": [1, 2, 3, 4],
          "dims": [{"size": 10, "stride": -1}, {"size": 20, "stride": 5}], "last": 0.75}


def _bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def test_layout_follows_wgsl_rules():
    layout = layout_of_source(ECHO, "echo")
    offsets = {name: off for name, off, _ in layout.root.fields}
    assert offsets == {"n": 0, "scale": 4, "offset": 8, "shift": 16, "lanes": 32, "dims": 48, "last": 96}
    assert layout.size == 112


def test_gpu_reads_the_packed_fields(device):
    layout = layout_of_source(ECHO, "echo")
    dev = device.device
    out = dev.create_buffer(size=16 * 4, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC)
    uniform = dev.create_buffer_with_data(data=layout.pack(VALUES), usage=wgpu.BufferUsage.UNIFORM)
    pipe = dev.create_compute_pipeline(layout="auto", compute={"module": dev.create_shader_module(code=ECHO),
                                                               "entry_point": "main"})
    dispatch_once(dev, pipe, [out, uniform])
    got = np.frombuffer(device.queue.read_buffer(out), np.uint32).tolist()
    want = [7, _bits(2.0), _bits(0.5), _bits(-1.25), (-3) & 0xFFFFFFFF, 1, 2, 3, 4,
            10, 0xFFFFFFFF, 20, 5, 0, 0,            # the third Dim was not given: zeros
            _bits(0.75)]
    assert got == want


@pytest.mark.parametrize("values, message", [
    ({**VALUES, "extra": 1}, "unknown ['extra']"),
    ({k: v for k, v in VALUES.items() if k != "shift"}, "missing ['shift']"),
    ({**VALUES, "n": 1.5}, "an integer is needed"),
    ({**VALUES, "n": -1}, "does not fit a u32"),
    ({**VALUES, "shift": 2**31}, "does not fit a i32"),
    ({**VALUES, "lanes": [1, 2, 3]}, "a vec4 needs 4 values"),
    ({**VALUES, "dims": [{"size": 1, "stride": 0}] * 4}, "4 values for an array of 3"),
    ({**VALUES, "dims": [{"size": 1}]}, "missing ['stride']"),
    ({**VALUES, "scale": "2"}, "f32 field given '2'"),
])
def test_bad_values_are_named(values, message):
    with pytest.raises(UniformError, match=re.escape(message)):
        layout_of_source(ECHO, "echo").pack(values)


@pytest.mark.parametrize("decl, message", [
    ("struct D { a: u32, b: u32, c: u32, d: u32 }\nstruct Params { n: u32, v: array<D, 2> }",
     "starts at byte 4, not on a 16-byte boundary"),
    ("struct Params { n: u32, @align(16) v: array<u32, 4> }", "4-byte stride, not a multiple of 16"),
])
def test_layouts_the_uniform_address_space_rejects_are_named(decl, message):
    with pytest.raises(UniformError, match=message):
        layout_of_source(decl, "bad")


def test_an_int_for_an_f32_field_is_converted_not_reinterpreted():
    data = layout_of_source(ECHO, "echo").pack(VALUES)
    assert struct.unpack_from("<f", data, 4)[0] == 2.0


def _kernels_with_params():
    folder = resources.files("wgpu_runtime.kernels")
    return sorted(f.name for f in folder.iterdir() if f.name.endswith(".wgsl") and "struct Params" in f.read_text())


@pytest.mark.parametrize("kernel", _kernels_with_params())
def test_every_kernel_params_struct_parses_without_padding_fields(kernel):
    folder = resources.files("wgpu_runtime.kernels")
    every = "".join(f.read_text() for f in folder.iterdir() if f.name.endswith(".wgsl"))   # includes too
    # placeholders that size an array (``array<T, {{N}}>``) get a count, the others a type
    counts = set(re.findall(r"array<[^>]*>?\s*,\s*\{\{(\w+)\}\}>", every))
    template = {name: "2" if name in counts else "f32"     # (those with a default keep it: pipelines.py)
                for name in re.findall(r"\{\{(\w+)\}\}", every) if name not in pipelines._DEFAULTS}
    layout = uniform_layout(kernel, template)
    assert layout.fields, kernel

    def names(t, prefix=""):
        if t.kind == "array":
            yield from names(t.element, prefix + "[]")
        for name, _, ft in t.fields:
            yield prefix + name
            yield from names(ft, prefix + name + ".")

    padding = [f for f in names(layout.root) if re.fullmatch(r"_?pad\d*", f.rsplit(".", 1)[-1])]
    assert not padding, f"{kernel}: hand-written padding fields {padding} (the packer computes padding)"


@pytest.mark.parametrize("kh,cin,n4", [(3, 3, 8), (1, 1, 256), (3, 4, 7)])
def test_the_uniform_convolution_holds_its_filter_in_its_params(kh, cin, n4):
    """conv2d_uniform.wgsl's Params end with the filter (conv_params.wgsl's FILTER_FIELD), 16-byte
    aligned, and the block stays within WebGPU's 64 KiB uniform binding at the largest filter
    the variant takes (ops/conv_uniform.py MAX_TERMS)."""
    assert kh * kh * cin * 4 * n4 <= conv_uniform.MAX_TERMS
    layout = uniform_layout("conv2d_uniform.wgsl", {**fused.template(None), **conv_uniform.template(kh, kh, cin, n4)})
    offset, t = next((off, ft) for name, off, ft in layout.root.fields if name == "fw")
    assert offset % 16 == 0 and t.count == (kh * kh * cin + 1) * n4 and layout.size <= 65536
    rows = np.arange(t.count * 4, dtype=np.float32).reshape(-1, 4)
    values = {name: 0 for name in layout.fields} | {"fw": list(rows)}
    data = np.frombuffer(layout.pack(values), np.float32)
    np.testing.assert_array_equal(data[offset // 4: offset // 4 + rows.size], rows.reshape(-1))
