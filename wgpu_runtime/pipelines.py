"""Compile WGSL compute pipelines once and cache them.

Cache key: (kernel file, template substitutions, override constants). Shapes, strides and
sizes never enter the key: kernels read them from a uniform buffer, so a new input shape (or a
second model) reuses every pipeline whose code is the same. What does enter the key is what
changes the generated code: element types and expressions (templates) and constants that make a
kernel faster when baked in (activation kind, vector width, tile sizes), passed as WGSL
`override` constants.

**Compiled in the background.** Creating a pipeline is most of a new process's first inference
where the driver compiles at creation (lavapipe: ~90 ms per MobileNetV2 kernel, with Mesa's
shader cache warm). The static planner asks for pipelines with :meth:`PipelineCache.get_deferred`:
the shader module and pipeline are made on a small thread pool (cffi releases the GIL in wgpu's
C calls; wgpu-py keeps its error capture per thread) while planning goes on, and the plan waits
for them only when it binds them (graph/plan.py). Not on OpenGL, where pipelines cost little at
creation (its GLSL is compiled at the first dispatch) and its context moves between threads.
"""
from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from importlib import resources

from . import shader_modules
from .errors import KernelCompileError
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


@lru_cache(maxsize=None)
def kernels_digest() -> str:
    """A short digest of every kernel file's text: what the kernels are in this install (the
    tuning cache's key holds it, so that timings of other kernels are not reused)."""
    h = hashlib.sha256()
    for path in sorted(resources.files("wgpu_runtime.kernels").iterdir(), key=lambda p: p.name):
        if path.name.endswith(".wgsl"):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


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
    translates the source once). Both are kept as futures (compiled in the background where
    :meth:`get_deferred` asked for them); a compile that failed is done again when asked for
    again (and raises again, unless what made it fail has changed)."""

    def __init__(self, device):
        self._device = device
        self._cache: dict[tuple, Future] = {}
        self._modules: dict[str, Future] = {}   # sha256 of the rendered WGSL -> shader module
        self._pool: ThreadPoolExecutor | None = None
        self.compiled = 0  # pipelines created so far (a cache miss each)
        self.modules_compiled = 0   # shader modules created so far

    @property
    def parallel(self) -> bool:
        """Whether pipelines compile on the thread pool (every backend but OpenGL)."""
        return self._device.backend != "OpenGL"

    def get(self, kernel: str, template: dict | None = None, constants: dict | None = None):
        """The compiled pipeline (KernelCompileError when the kernel does not compile)."""
        return self.resolve(self.get_deferred(kernel, template, constants))

    def get_deferred(self, kernel: str, template: dict | None = None, constants: dict | None = None) -> Future:
        """The pipeline as a future: compiling in the background (or compiled already); pass it
        to :meth:`resolve`."""
        key = (kernel, tuple(sorted((template or {}).items())), tuple(sorted((constants or {}).items())))
        fut = self._cache.get(key)
        if fut is None or _failed(fut):
            code = render(kernel, template)
            digest = hashlib.sha256(code.encode()).hexdigest()
            module = self._modules.get(digest)
            if module is None or _failed(module):
                module = self._modules[digest] = self._run(self._create_module, kernel, code)
                self.modules_compiled += 1
            fut = self._cache[key] = self._run(self._create_pipeline, kernel, module, constants)
            fut.what = f"kernel {kernel} (template {template}, constants {constants})"
            fut.kernel = kernel
            self.compiled += 1
        return fut

    def resolve(self, fut: Future):
        """The pipeline of a :meth:`get_deferred` future (waiting for its compile);
        KernelCompileError when it failed."""
        import wgpu

        try:
            return fut.result()
        except wgpu.GPUError as e:      # the failed futures stay cached until get_deferred replaces them
            raise KernelCompileError(f"{fut.what} does not compile on {self._device.name}: {e}",
                                     kernel=fut.kernel) from None

    def _run(self, fn, *args) -> Future:
        if not self.parallel:
            fut = Future()
            try:
                fut.set_result(fn(*args))
            except Exception as e:      # noqa: BLE001 -- delivered by resolve(), as from the pool
                fut.set_exception(e)
            return fut
        if self._pool is None:      # a FIFO queue: a module's job starts before its pipelines' jobs wait on it
            self._pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                                            thread_name_prefix="wgpu-runtime-compile")
        return self._pool.submit(fn, *args)

    def _create_module(self, kernel: str, code: str):
        return shader_modules.create(self._device.device, code, kernel)

    def _create_pipeline(self, kernel: str, module: Future, constants: dict | None):
        compute = {"entry_point": "main", "module": module.result()}
        if constants:
            compute["constants"] = {k: float(v) for k, v in constants.items()}
        return self._device.device.create_compute_pipeline(layout="auto", compute=compute, label=kernel)

    def __len__(self) -> int:
        return len(self._cache)


def _failed(fut: Future) -> bool:
    """A compile that ended in an error (asked for again, it is compiled again)."""
    return fut.done() and fut.exception() is not None
