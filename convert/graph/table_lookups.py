"""Table lookups TF.js gets the shape of wrong: its ``LookupTableFind`` stacks one value per key,
so the result is always 1-D ([N] for keys of any shape, [1] for a scalar key), where TensorFlow
gives the keys' shape (a Keras ``StringLookup`` / ``IntegerLookup`` on a [batch, tokens] input).

Each lookup whose keys are not known to be 1-D gets a ``Reshape`` to ``Shape(keys)`` after it: a
no-op in TensorFlow and this runtime, the right shape in TF.js. The Reshape takes the lookup's
name (its readers and the signature are unchanged); the lookup becomes ``<name>/flat``. The
official converter writes the bare lookup (1-D keys, the usual SavedModel case, are left as it does).
"""
from __future__ import annotations

FINDS = ("LookupTableFind", "LookupTableFindV2")


def reshape_table_lookups(graph_def):
    """``graph_def`` with the lookups described above reshaped (the same object, edited)."""
    finds = [n for n in graph_def.node if n.op in FINDS]
    if not finds:
        return graph_def
    ranks = _key_ranks(graph_def, finds)
    for find in finds:
        if ranks.get(find.name) == 1:
            continue
        name, keys = find.name, find.input[1]
        find.name = f"{name}/flat"
        shape = graph_def.node.add(name=f"{name}/keys_shape", op="Shape", input=[keys])
        shape.attr["T"].type = find.attr["Tin"].type
        shape.attr["out_type"].type = _int32()
        reshape = graph_def.node.add(name=name, op="Reshape", input=[find.name, shape.name])
        reshape.attr["T"].type = find.attr["Tout"].type
        reshape.attr["Tshape"].type = _int32()
    return graph_def


def _key_ranks(graph_def, finds) -> dict[str, int | None]:
    """Lookup name -> the rank of its keys (None: unknown): TensorFlow's shape inference, and
    a lookup's result has its keys' rank (TF infers none: the imported table handle has no shape)."""
    import tensorflow as tf

    from ..optimize.util import node_map, node_name

    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
    nodes = node_map(graph_def)

    def rank(ref: str, depth: int = 0):
        node = nodes.get(node_name(ref))
        if node is not None and depth < 64:
            if node.op in FINDS:
                return rank(node.input[1], depth + 1)
            if node.op == "Identity":
                return rank(node.input[0], depth + 1)
        name = ref if ":" in ref else ref + ":0"
        return g.get_tensor_by_name(name).shape.rank

    return {f.name: rank(f.input[1]) for f in finds}


def _int32() -> int:
    from tensorflow.python.framework import dtypes

    return dtypes.int32.as_datatype_enum
