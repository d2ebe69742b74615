"""Texture operands: float32 vec4 data kernels read with ``textureLoad`` instead of from a
storage buffer.

Mesa's llvmpipe (22.x) loads a storage buffer element lane by lane, while a texel fetch is one
vector gather: 8-10x the load rate (docs/lavapipe.md). Kernels that read an operand many times
(the convolution "texture" variant, ops/tiled.py) take it as a read-only storage texture
(``texture_storage_2d<rgba32float, read>``: llvmpipe fetches its texels 1.4-2x faster than a
sampled ``texture_2d``'s, tools/bench_loads.py) of rgba32float texels: a weight uploaded once
per model, or an activation copied into the texture right before the kernel that reads it
(``copy_buffer_to_texture``: about 15x faster there than a kernel repacking it, which would load
every element from its storage buffer).

Layout: linear. Vec4 ``i`` of the operand is texel (i % WIDTH, i / WIDTH), WIDTH = 4096 texels
(64 KiB rows: a multiple of the 256 bytes a buffer-to-texture copy needs per row), so a copy
takes the buffer as it is, whatever the operand's shape.

:class:`Tex` is a plan's virtual texture binding, like :class:`~wgpu_runtime.memory.Buf` for
buffers (with the attributes the planner reads). A collector (graph/collector.py) hands out
weight textures (once per model and key) and bindings of one scratch texture per plan (or
dynamic program), sized for the largest operand copied into it: steps run in order, so every
copy-then-read pair may share it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEXEL_BYTES = 16          # rgba32float
WIDTH_BITS = 12           # the kernels' template value {{TEXEL_ROW_BITS}} (pipelines.py)
WIDTH = 1 << WIDTH_BITS   # texels per texture row


def extent(device, texels: int) -> tuple[int, int] | None:
    """(width, height) of a texture holding ``texels`` vec4s on ``device``; None when they do
    not fit its max-texture-dimension-2d.

    Every such texture has a power-of-two width and a height that is not a power of two. Mesa's
    llvmpipe compiles a kernel's machine code once per combination of its bound textures'
    power-of-two-ness (part of its shader-variant key), so a mix costs whole extra LLVM compiles:
    MobileNetV2 224 on lavapipe compiled 15 variants instead of 11, its first inference in a new
    process took 13-15 s with an empty shader cache instead of 9.5 s, and still ~5 s in the
    second process instead of 1.3 s (docs/lavapipe.md). So a power-of-two height gets one row
    more (1 row: 3), and an operand of at most WIDTH texels a narrower texture: the power of two
    holding it, whose row 0 is all the kernels read (texel (i % WIDTH, i / WIDTH))."""
    lim = getattr(device, "limits", None) or {}
    dim = int(lim.get("max-texture-dimension-2d", 8192))
    width = WIDTH if texels > WIDTH else 1 << (max(texels, 1) - 1).bit_length()
    height = max(1, -(-texels // width))
    if height & (height - 1) == 0 and height + 2 <= dim:
        height = 3 if height == 1 else height + 1
    return (width, height) if dim >= width and height <= dim else None


@dataclass(eq=False)
class Tex:
    """A texture binding of a plan: ``kind`` "weight" (uploaded once) or "scratch" (a binding
    of the collector's shared ``scratch`` texture, written by a copy step). ``gpu`` is the
    GPUTexture once created (the shared one's, for a scratch binding)."""

    width: int
    height: int
    kind: str = "scratch"
    key: str | None = None
    label: str = ""
    gpu: object = None
    scratch: "Tex | None" = None
    first: int = -1               # (set by the planner's liveness pass, as on a Buf)
    last: int = -1

    @property
    def nbytes(self) -> int:
        return self.width * self.height * TEXEL_BYTES

    @property
    def root(self) -> "Tex":
        return self

    @property
    def texture(self):
        """The physical GPUTexture."""
        return (self.scratch or self).gpu

    def resource(self):
        """The bind group resource: a view of the texture."""
        return self.texture.create_view()


def create(device, width: int, height: int, label: str = ""):
    """An rgba32float 2-D texture kernels read and copies write (and read, in tests)."""
    import wgpu

    u = wgpu.TextureUsage
    return device.device.create_texture(size=(width, height, 1), format="rgba32float", dimension="2d",
                                        usage=u.STORAGE_BINDING | u.COPY_DST | u.COPY_SRC, label=label)


def texels_of(device, matrix: np.ndarray) -> np.ndarray:
    """A float32 [rows, cols] matrix in the linear layout: rows of 4 * ceil(cols / 4) floats
    (zero padded), as texel data [height, width, 4] (zero padded; :func:`extent`)."""
    rows, cols = matrix.shape
    cols_p = 4 * -(-cols // 4)
    ext = extent(device, rows * cols_p // 4)
    if ext is None:
        raise ValueError(f"a {rows} x {cols} matrix does not fit a texture on this device")
    width, height = ext
    flat = np.zeros(height * width * 4, np.float32)
    flat[:rows * cols_p].reshape(rows, cols_p)[:, :cols] = matrix
    return flat.reshape(height, width, 4)


def weight_texture(device, key: str, matrix: np.ndarray) -> Tex:
    """A "weight" Tex holding float32 [rows, cols] ``matrix`` (:func:`texels_of`), created and
    uploaded now."""
    texels = texels_of(device, np.asarray(matrix, np.float32))
    tex = Tex(texels.shape[1], texels.shape[0], "weight", key=key, label=key)
    tex.gpu = create(device, tex.width, tex.height, key)
    upload(device, tex.gpu, texels)
    return tex


def upload(device, tex, texels: np.ndarray) -> None:
    """Write texel data [height, width, 4] into texture ``tex``."""
    height, width, _ = texels.shape
    device.queue.write_texture({"texture": tex, "mip_level": 0, "origin": (0, 0, 0)},
                               memoryview(np.ascontiguousarray(texels)).cast("B"),
                               {"offset": 0, "bytes_per_row": width * TEXEL_BYTES, "rows_per_image": height},
                               (width, height, 1))


def _parts(offset: int, texels: int) -> list[tuple[int, int, int, int]]:
    """(buffer offset, first texture row, width, rows) of the copies of ``texels`` vec4s in the
    linear layout: the whole rows, then the partial last one."""
    rows, rest = divmod(texels, WIDTH)
    return ([(offset, 0, WIDTH, rows)] if rows else []) + ([(offset + rows * WIDTH * TEXEL_BYTES, rows, rest, 1)]
                                                           if rest else [])


def prepare_copy(buffer, offset: int, tex, texels: int) -> list:
    """:func:`encode_copy`'s copies as wgpu-native C structs, built once for a plan whose buffers
    are fixed: wgpu-py's ``copy_buffer_to_texture`` builds and checks them on every call (tens of
    microseconds each on this project's machines)."""
    from wgpu.backends.wgpu_native._api import enums, new_struct, new_struct_p

    return [(new_struct_p("WGPUTexelCopyBufferInfo *", buffer=buffer._internal,
                          layout=new_struct("WGPUTexelCopyBufferLayout", offset=off,
                                            bytesPerRow=WIDTH * TEXEL_BYTES, rowsPerImage=rows)),
             new_struct_p("WGPUTexelCopyTextureInfo *", texture=tex._internal, mipLevel=0,
                          origin=new_struct("WGPUOrigin3D", x=0, y=y, z=0), aspect=enums.TextureAspect.all),
             new_struct_p("WGPUExtent3D *", width=width, height=rows, depthOrArrayLayers=1))
            for off, y, width, rows in _parts(offset, texels)]


def encode_prepared(encoder, parts: list) -> None:
    """Record copies made by :func:`prepare_copy` (errors surface at the encoder's finish())."""
    from wgpu.backends.wgpu_native import lib

    for src, dst, size in parts:
        lib.wgpuCommandEncoderCopyBufferToTexture(encoder._internal, src, dst, size)


def encode_copy(encoder, buffer, offset: int, tex, texels: int) -> None:
    """Copy ``texels`` vec4s from ``buffer`` (from byte ``offset``) into texture ``tex`` in the
    linear layout: the whole rows, then the partial last one."""
    for off, y, width, rows in _parts(offset, texels):
        encoder.copy_buffer_to_texture({"buffer": buffer, "offset": off, "bytes_per_row": WIDTH * TEXEL_BYTES,
                                        "rows_per_image": rows}, {"texture": tex, "origin": (0, y, 0)},
                                       (width, rows, 1))
