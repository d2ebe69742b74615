"""Compile WGSL compute pipelines once and cache them.

Cache key: (kernel file, template substitutions, override constants). Shapes, strides and
sizes never enter the key: kernels read them from a uniform buffer, so a new input shape (or a
second model) reuses every pipeline whose code is the same. What does enter the key is what
changes the generated code: element types and expressions (templates) and constants that make a
kernel faster when baked in (activation kind, vector width, tile sizes), passed as WGSL
`override` constants.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib import resources

from .errors import GraphError
from .textures import WIDTH_BITS

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# The size of a 1-D workgroup: every kernel reads it as the template value {{WORKGROUP}} (common.wgsl
# declares `const WG`), and the launch geometry (ops/launch.py grid_1d) uses the same number.
WORKGROUP = 64
# ... texture operands' row width as a power of two, {{TEXEL_ROW_BITS}} (textures.py's layout), and
# {{FILTER_FIELD}}, the convolutions' uniform block's last field: empty but in conv2d_uniform.wgsl;
# {{TC}} and {{ENABLES}}, the tiled kernels' compute type and WGSL enables (f16 under the float16
# precision option: precision.py)
_DEFAULTS = {"WORKGROUP": WORKGROUP, "TEXEL_ROW_BITS": WIDTH_BITS, "FILTER_FIELD": "", "TC": "f32", "ENABLES": ""}


@lru_cache(maxsize=None)
def kernel_source(name: str) -> str:
    """Text of kernels/<name> (shipped as package data in wgpu_runtime.kernels)."""
    return resources.files("wgpu_runtime.kernels").joinpath(name).read_text()


def render(name: str, template: dict | None = None) -> str:
    """kernels/<name> with ``{{KEY}}`` placeholders replaced; ``#include <file>`` lines inlined."""
    src = kernel_source(name)
    src = re.sub(r"^#include <([\w.]+)>$", lambda m: render(m.group(1), template), src, flags=re.M)
    template = {**_DEFAULTS, **(template or {})}

    def sub(m):
        if m.group(1) not in template:
            raise KeyError(f"kernel {name}: no value for template placeholder {{{{{m.group(1)}}}}}")
        return str(template[m.group(1)])

    return _PLACEHOLDER.sub(sub, src)


class PipelineCache:
    """The device's compiled pipelines, and the shader modules they were made from: one module
    per distinct WGSL source (pipelines that differ only in override constants share it, so naga
    translates the source once)."""

    def __init__(self, device):
        self._device = device
        self._cache: dict[tuple, object] = {}
        self._modules: dict[str, object] = {}   # sha256 of the rendered WGSL -> shader module
        self.compiled = 0  # pipelines created so far (a cache miss each)
        self.modules_compiled = 0   # shader modules created so far

    def _module(self, kernel: str, code: str):
        digest = hashlib.sha256(code.encode()).hexdigest()
        module = self._modules.get(digest)
        if module is None:
            module = self._device.device.create_shader_module(code=code, label=kernel)
            self._modules[digest] = module
            self.modules_compiled += 1
        return module

    def get(self, kernel: str, template: dict | None = None, constants: dict | None = None):
        key = (kernel, tuple(sorted((template or {}).items())), tuple(sorted((constants or {}).items())))
        pipe = self._cache.get(key)
        if pipe is None:
            import wgpu

            dev = self._device.device
            compute = {"entry_point": "main"}
            if constants:
                compute["constants"] = {k: float(v) for k, v in constants.items()}
            try:
                compute["module"] = self._module(kernel, render(kernel, template))
                pipe = dev.create_compute_pipeline(layout="auto", compute=compute, label=kernel)
            except wgpu.GPUError as e:
                raise GraphError(f"kernel {kernel} (template {template}, constants {constants}) "
                                 f"does not compile on {self._device.name}: {e}") from None
            self._cache[key] = pipe
            self.compiled += 1
        return pipe

    def __len__(self) -> int:
        return len(self._cache)
