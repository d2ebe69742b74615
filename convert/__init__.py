"""The converter (Keras HDF5 / SavedModel / TF Hub -> TF.js format). Needs TensorFlow; the
runtime never imports it. Installed as ``wgpu_runtime.convert``."""
