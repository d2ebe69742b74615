"""A frozen GraphDef (.pb) plus ``--output_node_names`` -> :class:`Frozen`.

Unlike the official converter (which writes an empty input signature and outputs without dtype
or shape), the signature lists the graph's placeholders and the outputs' dtypes and shapes.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError
from .freeze import Frozen, entries_from_graph


def load_frozen_pb(path: Path, options) -> Frozen:
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path} is not a file (tf_frozen_model takes a frozen GraphDef .pb file)")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except (DecodeError, RuntimeWarning, ValueError) as e:
        raise ConversionError(f"{path} is not a frozen GraphDef (.pb): {e}") from None
    if not graph_def.node:
        raise ConversionError(f"{path} is not a frozen GraphDef (.pb): it holds no nodes")
    names = {n.name for n in graph_def.node}
    outputs = list(options.output_node_names or [])
    missing = [o for o in outputs if o.split(":")[0] not in names]
    if missing:
        raise ConversionError(f"{path}: --output_node_names not in the graph: {', '.join(missing)}")
    variables = sorted(n.name for n in graph_def.node if n.op in ("VariableV2", "VarHandleOp", "Variable"))
    if variables:
        raise ConversionError(f"{path} is not frozen: it has variables ({', '.join(variables[:3])}...)")
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    try:
        inputs = entries_from_graph(graph_def, placeholders)
        outs = entries_from_graph(graph_def, outputs)
    except ConversionError:
        raise
    except Exception as e:
        raise ConversionError(f"{path}: TensorFlow cannot import the graph: {str(e).splitlines()[0]}") from None
    return Frozen(graph_def, inputs, outs, tf.__version__)
