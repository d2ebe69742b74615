"""A local TF Hub module folder -> :class:`Frozen`. No network: the path must be a folder.

* TF2 modules are SavedModels: the ``default`` signature, else ``serving_default`` (the
  official converter asks for ``--signature_name=serving_default`` when ``default`` is absent).
* TF1 hub format (``tfhub_module.pb`` beside a TF1 SavedModel whose default graph variant has
  no tags): the SavedModel is loaded in a session (``tensorflow_hub`` >= 0.16 no longer has
  ``hub.Module``, which the official converter needs), signature ``default`` unless
  ``--signature_name``, variables frozen to constants.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError
from .freeze import Frozen
from .saved_model import freeze_v1, load_saved_model, meta_graph, pick_signature

HUB_V1_FILE = "tfhub_module.pb"


def load_hub(path: Path, options) -> Frozen:
    path = Path(path)
    if not path.is_dir():
        raise ConversionError(f"{path} is not a TF Hub module folder (only local folders are converted; "
                              "download and extract the module first)")
    if (path / HUB_V1_FILE).is_file():
        return load_hub_v1(path, options.signature_name or "default")
    return load_saved_model(path, options, signatures=("default", "serving_default"), what="TF Hub module")


def load_hub_v1(path: Path, signature: str) -> Frozen:
    import tensorflow as tf

    mg = meta_graph(path, [])
    name = pick_signature(path, mg, [signature], explicit=True)
    frozen = freeze_v1(path, [], mg.signature_def[name], tf.__version__)
    frozen.notes = [f"TF1 hub module, signature {name!r}"]
    return frozen
