"""The converter (Keras HDF5 / SavedModel / TF Hub -> TF.js format). Needs TensorFlow; the
runtime never imports it. Installed as ``wgpu_runtime.convert``.

TensorFlow is imported through ``import_tensorflow()`` (``tensorflow_loader.py``): in a process
where the runtime has opened an OpenGL adapter, a plain ``import tensorflow`` would crash at
TensorFlow's first graph optimisation (README, Known issues)."""
from .tensorflow_loader import import_tensorflow

__all__ = ["import_tensorflow"]
