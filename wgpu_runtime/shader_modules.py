"""Create the runtime's shader modules without naga's loop bounding (its bounds checks kept).

Since wgpu 25, naga gives every loop of a shader a hidden iteration counter that breaks out
after 2^64 iterations (wgpu's ``ShaderRuntimeChecks::force_loop_bounding``), so that a loop that
never ends cannot hang the GPU. That counter is one more loop exit with a vector compare and
decrement per iteration, which most likely keeps Mesa from unrolling our kernels' short
constant loops (llvmpipe keeps accumulator arrays in registers only where every index is a
constant: docs/lavapipe.md). MobileNetV2 224 on lavapipe: its 34 texture convolutions 13.7 ms
of GPU time without the counter, 17.5 ms with it (docs/lavapipe.md, sixth session of
2026-12-05).

Every kernel here is the runtime's own (kernels/*.wgsl and the registry's element-wise
expressions), and each of its loops ends by construction: ``for`` loops only, over a counter
compared against a constant, an override or a uniform size (tests/test_kernel_loops.py checks
every kernel file for that). So modules are made with wgpu-native's
``wgpuDeviceCreateShaderModuleTrusted`` and the checks mask ``BoundsChecks`` alone: every
buffer, array and texel access stays clamped as before, and a bad size can at worst make a
kernel read the wrong element, never memory outside its bindings.

``WGPU_RUNTIME_LOOP_BOUNDING=1`` keeps naga's loop bounding (wgpu-py's ordinary
``create_shader_module``), as does a wgpu-native without the trusted call.
"""
from __future__ import annotations

import os

__all__ = ["LOOP_BOUNDING_ENV", "create", "loop_bounding"]

LOOP_BOUNDING_ENV = "WGPU_RUNTIME_LOOP_BOUNDING"
_BOUNDS_CHECKS = 0x1        # WGPUShaderRuntimeChecks_BoundsChecks (wgpu.h)


def loop_bounding() -> bool:
    """Whether shader modules keep naga's loop bounding: ``WGPU_RUNTIME_LOOP_BOUNDING=1``, or a
    wgpu-native without the trusted call (``bench --json`` records it as ``loop_bounding``)."""
    return _asked_for() or _trusted_call() is None


def _asked_for() -> bool:
    return os.environ.get(LOOP_BOUNDING_ENV, "0").strip() not in ("", "0")


def create(device, code: str, label: str):
    """A ``wgpu.GPUShaderModule`` of WGSL ``code`` on wgpu ``device``: with bounds checks and
    without loop bounding where wgpu-native has the trusted call, else as wgpu-py makes it.
    Errors (a WGSL that does not compile) raise as from ``create_shader_module``."""
    trusted = None if _asked_for() else _trusted_call()
    if trusted is None:
        return device.create_shader_module(code=code, label=label)
    from wgpu.backends.wgpu_native._api import GPUShaderModule, ffi, lib, new_struct_p, to_c_string_view

    source = new_struct_p("WGPUShaderSourceWGSL *", code=to_c_string_view(code))
    source[0].chain.next = ffi.NULL
    source[0].chain.sType = lib.WGPUSType_ShaderSourceWGSL
    descriptor = new_struct_p("WGPUShaderModuleDescriptor *", nextInChain=ffi.cast("WGPUChainedStruct *", source),
                              label=to_c_string_view(label))
    handle = trusted(device._internal, descriptor, _BOUNDS_CHECKS)   # libf: a compile error raises here
    if handle == ffi.NULL:
        raise RuntimeError(f"shader module {label!r}: wgpu-native returned no module")
    return GPUShaderModule(label, handle, device)


def _trusted_call():
    """wgpu-py's error-capturing wrapper of ``wgpuDeviceCreateShaderModuleTrusted``, or None
    where the installed wgpu-py / wgpu-native lacks it."""
    try:
        from wgpu.backends.wgpu_native._api import libf
        return getattr(libf, "wgpuDeviceCreateShaderModuleTrusted", None)
    except ImportError:
        return None
