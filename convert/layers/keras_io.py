"""Keras models in and out through Keras itself: a .keras file (Keras 3, or tf_keras's own
.keras) or a tf_keras SavedModel is loaded and saved again as HDF5 in a private temporary
folder (nothing is written next to the input); a layers model is rebuilt in tf_keras and saved
as .h5 / .keras / SavedModel."""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from wgpu_runtime.format import publish

from ..errors import ConversionError
from .h5 import KerasH5, read_keras_h5


def read_keras_file(path) -> KerasH5:
    """A ``.keras`` zip, loaded by the Keras that wrote it and re-saved as HDF5 in a temp folder."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file" if not path.exists() else f"{path}: expected a .keras file, got a folder")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ConversionError(f"{path}: not a .keras file (a zip with config.json and model.weights.h5): {e}") from None
    if "config.json" not in names:
        raise ConversionError(f"{path}: not a .keras file: config.json is missing")
    keras2 = str(meta.get("keras_version", "3")).startswith("2.")
    if keras2:
        import tf_keras as keras
    else:
        import keras
    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as e:  # noqa: BLE001 -- Keras raises many kinds for a bad file; one line names it
        raise ConversionError(f"{path}: Keras cannot load this .keras file: {first_line(e)}") from None
    return _via_h5(model, path)


def read_keras_saved_model(path) -> KerasH5:
    """A tf_keras SavedModel folder (``tf_keras`` ``model.save(folder, save_format="tf")``)."""
    path = Path(path)
    if not path.is_dir() or not (path / "saved_model.pb").is_file():
        raise ConversionError(f"{path}: not a Keras SavedModel folder (no saved_model.pb)")
    if not (path / "keras_metadata.pb").is_file():
        raise ConversionError(f"{path}: a SavedModel without Keras metadata (keras_metadata.pb) cannot become a "
                              "layers model; convert it with --input_format=tf_saved_model to a graph model")
    import tf_keras

    try:
        model = tf_keras.models.load_model(str(path), compile=False)
    except Exception as e:  # noqa: BLE001 -- Keras raises many kinds; one line names it
        raise ConversionError(f"{path}: tf_keras cannot load this SavedModel: {first_line(e)}") from None
    return _via_h5(model, path)


def _via_h5(model, source: Path) -> KerasH5:
    with tempfile.TemporaryDirectory(prefix="wgpu-convert-") as tmp:
        h5 = Path(tmp) / "model.h5"
        try:
            model.save(str(h5))
        except Exception as e:  # noqa: BLE001 -- Keras raises many kinds; one line names it
            raise ConversionError(f"{source}: Keras cannot save this model as HDF5 (subclassed models have no "
                                  f"config to convert): {first_line(e)}") from None
        return read_keras_h5(h5)


def save_keras_model(model, output, output_format: str, overwrite: bool) -> Path:
    """Save a tf_keras model as ``keras`` (HDF5), ``keras_keras`` (.keras) or ``keras_saved_model``,
    written in a temporary place beside ``output`` and renamed into place."""
    output = Path(output)
    publish.recover(output)                  # leftovers of a killed conversion
    if output.exists() and not overwrite:
        raise ConversionError(f"output {output} exists (pass --overwrite to replace it)")
    tmp = publish.temp_beside(output)
    try:
        if output_format == "keras":
            target = tmp / "model.h5"
            model.save(str(target), save_format="h5")
        elif output_format == "keras_keras":
            target = tmp / "model.keras"
            model.save(str(target), save_format="keras")
        else:
            target = tmp / "saved_model"
            model.save(str(target), save_format="tf")
        publish.swap_into_place(target, output)   # the old output or the new one, whenever it is killed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output


def first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
