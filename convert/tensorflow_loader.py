"""Import TensorFlow so that it survives a WebGPU adapter opened earlier in the same process.

Mesa's OpenGL driver (llvmpipe, ``swrast_dri.so``) is loaded by libEGL with ``RTLD_GLOBAL``: once
wgpu has enumerated or opened an OpenGL adapter (``get_device`` with any query enumerates them
all), Mesa's ``libLLVM-15.so`` sits in the process's global symbol scope. TensorFlow's libraries
carry their own LLVM (MLIR, used by Grappler) and export its symbols; loaded after Mesa's, they
bind those symbols to Mesa's LLVM, and the first graph optimisation (any ``tf.function``, every
conversion) dies with SIGSEGV in ``llvm::raw_ostream::write``. Imported before the adapter,
TensorFlow is fine.

``import_tensorflow()`` imports TensorFlow with ``RTLD_DEEPBIND`` when an LLVM is already in the
global scope, so TensorFlow's libraries resolve their own symbols first. The converter imports
TensorFlow through it; code of your own that needs TensorFlow after the runtime has opened an
adapter can do the same (``from wgpu_runtime.convert import import_tensorflow``).
"""
from __future__ import annotations

import ctypes
import os
import sys
from types import ModuleType


def llvm_in_global_scope() -> bool:
    """Whether an LLVM library (Mesa's) is visible to every library loaded from now on."""
    return hasattr(ctypes.CDLL(None), "LLVMContextCreate")


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, isolated from an LLVM already in the global scope (see above).

    A TensorFlow imported earlier is returned as it is: it was either imported before the
    adapter (safe) or not through this function (nothing can rebind it now)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    flags = sys.getdlopenflags()
    if llvm_in_global_scope():
        sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import tensorflow
    finally:
        sys.setdlopenflags(flags)
    return tensorflow
