"""Keep numpy's OpenBLAS to a number of threads while training steps run.

A training step of a small model is many small matrix products. OpenBLAS splits each across its
threads, which then spin and wait for each other between calls: on a busy machine a product of
32x784 by 784x128 took 1.7 ms on two threads against 0.1 ms on one (measured here). fit()
therefore runs its steps with ``blas_threads`` (default 1) and restores the previous setting
afterwards. The library is found among the process' loaded objects and driven through its own
``*openblas_set_num_threads*`` entry points (as threadpoolctl does); where there is none
(another BLAS, another OS) this is a no-op.
"""
from __future__ import annotations

import contextlib
import ctypes

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "_64_", "")
_LIBS = None


def _openblas_libs() -> list:
    global _LIBS
    if _LIBS is None:
        _LIBS = []
        try:
            with open("/proc/self/maps") as fh:
                paths = {line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line}
        except OSError:
            paths = set()
        for path in sorted(paths):
            try:
                lib = ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL)
            except OSError:
                continue
            for prefix in _PREFIXES:
                for suffix in _SUFFIXES:
                    get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                    put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                    if get is not None and put is not None:
                        get.restype = ctypes.c_int
                        put.argtypes = [ctypes.c_int]
                        _LIBS.append((get, put))
                        break
                else:
                    continue
                break
    return _LIBS


@contextlib.contextmanager
def limit(threads: int | None):
    """Within the block OpenBLAS uses at most ``threads`` threads (None: leave it alone)."""
    libs = _openblas_libs() if threads else []
    before = [get() for get, _ in libs]
    for (_, put), n in zip(libs, before):
        put(min(int(threads), n))
    try:
        yield
    finally:
        for (_, put), n in zip(libs, before):
            put(n)
