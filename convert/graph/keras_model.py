"""Keras files -> :class:`Frozen`, traced in memory (no SavedModel round trip).

* ``.h5`` saved by tf_keras (Keras 2): loaded with tf_keras and traced exactly as tf_keras traces
  a SavedModel's ``serving_default`` (``saving_utils.trace_model_call``: batch dimension None,
  inputs keyed by input names, outputs by output names) -- the official converter's route,
  minus its save/load of a temporary SavedModel.
* ``.h5`` saved by Keras 3, and ``.keras`` files: loaded with Keras 3 and its call traced with
  ``tf.function`` (the official converter fails inside tf_keras on these).
* Recurrent layers trace to loops; with a fixed sequence length the optimizer unrolls them
  (``convert/optimize/unroll.py``), so the graph has no control flow.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError
from .freeze import Frozen, freeze_concrete_function
from .resources import add_initializer


def keras_file_kind(path: Path) -> str:
    """"keras3" | "tf_keras" for a full-model .h5 / .keras file; errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path} is not a file (keras takes an .h5 file, keras_keras a .keras file)")
    if path.suffix == ".keras":
        import zipfile

        if not zipfile.is_zipfile(path):
            raise ConversionError(f"{path} is not a Keras v3 .keras file (not a zip archive)")
        return "keras3"
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except OSError as e:
        raise ConversionError(f"{path} is not a readable HDF5 file ({str(e).splitlines()[0]})") from None
    if "model_config" not in attrs:
        if "layer_names" in attrs:
            raise ConversionError(f"{path} holds weights only (save_weights): a graph model needs the model's "
                                  "topology too (save the whole model)")
        raise ConversionError(f"{path} is an HDF5 file without a Keras model in it (no model_config)")
    version = attrs.get("keras_version", b"")
    version = version.decode() if isinstance(version, bytes) else str(version)
    return "keras3" if version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 3 else "tf_keras"


def load_keras_file(path: Path, options) -> Frozen:
    path = Path(path)
    kind = keras_file_kind(path)
    model = _load(path, kind)
    try:
        fn = _trace_tf_keras(model) if kind == "tf_keras" else _trace_keras3(model)
    except ConversionError:
        raise
    except Exception as e:
        raise ConversionError(f"{path}: cannot trace the model's call: {str(e).splitlines()[0]}") from None
    import tensorflow as tf

    frozen = freeze_concrete_function(fn, tf.__version__)
    frozen.notes.append(f"{'tf_keras' if kind == 'tf_keras' else 'Keras 3'} model")
    add_initializer(frozen, model, fn, path, options)      # StringLookup / IntegerLookup tables
    frozen.official_prefix = "StatefulPartitionedCall/"
    return frozen


def _load(path: Path, kind: str):
    try:
        if kind == "tf_keras":
            import tf_keras

            return tf_keras.models.load_model(str(path), compile=False)
        import keras

        return keras.models.load_model(str(path), compile=False)
    except Exception as e:  # h5py / Keras raise many types for corrupt or foreign files
        raise ConversionError(f"{path}: cannot load the Keras model: {str(e).splitlines()[0]}") from None


def _trace_tf_keras(model):
    from tf_keras.src.saving.legacy import saving_utils

    return saving_utils.trace_model_call(model)


def _trace_keras3(model):
    import tensorflow as tf

    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        raise ConversionError("the Keras model has no defined inputs (build it with keras.Input)")
    specs = [tf.TensorSpec(tuple(t.shape), t.dtype, name=t.name) for t in inputs]
    names = list(getattr(model, "output_names", None) or [])

    @tf.function(input_signature=specs)
    def serve(*xs):
        y = model(list(xs) if len(xs) > 1 else xs[0], training=False)
        flat = tf.nest.flatten(y)
        keys = names if len(names) == len(flat) else [f"output_{i}" for i in range(len(flat))]
        return dict(zip(keys, flat))

    return serve.get_concrete_function()
