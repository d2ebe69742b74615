"""SavedModel folder -> :class:`Frozen` (TF2 signature functions; TF1 SavedModels through a
session when the TF2 freeze fails, as the official converter)."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError
from .freeze import Frozen, TensorEntry, freeze_concrete_function
from .resources import add_initializer

DEFAULT_SIGNATURE = "serving_default"


def check_folder(path: Path, what: str = "SavedModel") -> None:
    if not path.is_dir():
        raise ConversionError(f"{path} is not a {what} folder (expected a folder holding saved_model.pb)")
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise ConversionError(f"{path} is not a {what} folder: no saved_model.pb in it")


def meta_graph(path: Path, tags: list[str]):
    """The MetaGraphDef with exactly these tags (error lists the tag sets there are)."""
    from google.protobuf.message import DecodeError
    from tensorflow.python.saved_model import loader_impl

    try:
        saved = loader_impl.parse_saved_model(str(path))
    except (OSError, DecodeError) as e:
        raise ConversionError(f"{path}: cannot read the SavedModel: {_first_line(e)}") from None
    for mg in saved.meta_graphs:
        if set(mg.meta_info_def.tags) == set(tags):
            return mg
    have = "; ".join(",".join(mg.meta_info_def.tags) or "(none)" for mg in saved.meta_graphs)
    raise ConversionError(f"{path}: no MetaGraph with tags {','.join(tags) or '(none)'} "
                          f"(it has: {have}); pass --saved_model_tags")


def pick_signature(path: Path, mg, wanted: list[str], explicit: bool) -> str:
    for name in wanted:
        if name in mg.signature_def:
            return name
    have = ", ".join(sorted(mg.signature_def)) or "none"
    asked = wanted[0] if explicit or len(wanted) == 1 else " or ".join(wanted)
    raise ConversionError(f"{path}: the SavedModel has no signature {asked!r} (it has: {have}); "
                          "pass --signature_name")


def load_saved_model(path: Path, options, signatures=(DEFAULT_SIGNATURE,), what="SavedModel") -> Frozen:
    import tensorflow as tf

    path = Path(path)
    check_folder(path, what)
    tags = [t for t in (options.saved_model_tags or "").split(",") if t]
    mg = meta_graph(path, tags)
    explicit = options.signature_name is not None
    name = pick_signature(path, mg, [options.signature_name] if explicit else list(signatures), explicit)
    tf_version = mg.meta_info_def.tensorflow_version or tf.__version__
    try:
        model = tf.saved_model.load(str(path), tags=tags or None)
    except Exception as e:  # TF raises many types for unreadable / incompatible SavedModels
        raise ConversionError(f"{path}: cannot load the SavedModel: {_first_line(e)}") from None
    if name in getattr(model, "signatures", {}):
        fn = model.signatures[name]
        try:
            frozen = freeze_concrete_function(fn, tf_version)
        except ConversionError:
            raise
        except Exception:
            frozen = None  # TF1 graphs: freeze through a session below
        if frozen is not None:
            frozen.notes.append(f"signature {name!r}")
            add_initializer(frozen, model, fn, path, options)
            return frozen
    return freeze_v1(path, tags, mg.signature_def[name], tf_version)


def freeze_v1(path: Path, tags: list[str], signature, tf_version: str) -> Frozen:
    """A TF1 SavedModel: load it in a session and convert its variables to constants."""
    import tensorflow as tf

    outputs = [TensorEntry(k, v.name, v.dtype, v.tensor_shape) for k, v in sorted(signature.outputs.items())]
    inputs = [TensorEntry(k, v.name, v.dtype, v.tensor_shape) for k, v in sorted(signature.inputs.items())]
    with tf.Graph().as_default() as g, tf.compat.v1.Session(graph=g) as sess:
        try:
            tf.compat.v1.saved_model.loader.load(sess, tags, str(path))
        except Exception as e:
            raise ConversionError(f"{path}: cannot load the SavedModel: {_first_line(e)}") from None
        graph_def = tf.compat.v1.graph_util.convert_variables_to_constants(
            sess, g.as_graph_def(), [o.node for o in outputs])
    return Frozen(graph_def, inputs, outputs, tf_version, notes=["TF1 SavedModel frozen in a session"])


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]
