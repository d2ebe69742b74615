"""Lookup tables: the graph that makes and fills them (model.json's ``modelInitializer``).

Freezing turns variables into constants, but a hash table is a resource: the frozen inference
graph keeps it as a ``DT_RESOURCE`` placeholder. As the official converter
(``tf_saved_model_conversion_v2._get_resource_initializer_concrete_function`` /
``_get_resource_ids_maps``), every table the signature function reads is made again and filled
inside one ``tf.function``, whose frozen graph becomes ``modelInitializer`` with an
``initializerSignature`` listing its outputs (the table handles). Each handle and the inference
placeholder it feeds carry the same ``resourceId`` (the table's TensorFlow handle id); TF.js
(``GraphModel.executeInitializerGraph``) and this runtime (``graph/dynamic/executor.py``) run the
initializer once and feed its outputs to the placeholders with the same id.

Better than the official converter: only the tables the signature reads are written (it fails
on a model holding a table its signature does not use), and a table the runtimes cannot fill
(from a vocabulary file, a mutable table) is refused naming it, instead of a model that loads
and fails on its first run.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConversionError
from .freeze import TensorEntry

# Ops TF.js and this runtime run to make and fill a table (TF.js's hash_table executor).
TABLE_FILLERS = {"LookupTableImport", "LookupTableImportV2", "InitializeTable", "InitializeTableV2"}
FROM_FILE = {"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"}


@dataclass
class Initializer:
    graph_def: object              # frozen GraphDef: HashTableV2 + LookupTableImportV2 (+ Identity / NoOp)
    outputs: list[TensorEntry]     # the table handles, each with its resource_id


def resource_inputs(fn, graph_def) -> list:
    """The signature function's captured DT_RESOURCE inputs that freezing left as placeholders
    (variables' handles became constants)."""
    import tensorflow as tf

    kept = {n.name for n in graph_def.node if n.op == "Placeholder"}
    captured = fn.inputs[len(fn.inputs) - len(fn.captured_inputs):]
    return [t for t in captured if t.dtype == tf.resource and t.name.split(":")[0] in kept]


def build_initializer(root, fn, graph_def, where, control_flow_v2: bool = False
                      ) -> tuple[Initializer | None, list[TensorEntry]]:
    """(the initializer, the inference graph's resource inputs keyed as the official converter keys
    them: by tensor name, each with its ``resource_id``) for the tables ``fn`` reads; (None, [])
    when it reads none. ``root``: the loaded SavedModel (or Keras model) holding the tables;
    ``graph_def``: ``fn`` frozen."""
    from tensorflow.python.checkpoint.trackable_view import TrackableView
    from tensorflow.python.trackable.resource import TrackableResource

    placeholders = resource_inputs(fn, graph_def)
    wanted = {t.name for t in placeholders}
    if not placeholders:
        return None, []
    offset = len(fn.inputs) - len(fn.captured_inputs)
    index_of = {t._id: i for i, t in enumerate(fn.captured_inputs)}     # handle id -> captured position
    tables, seen = [], set()
    for obj in TrackableView(root).descendants():
        if isinstance(obj, TrackableResource):
            rid = obj.resource_handle._id
            if rid in index_of and rid not in seen and fn.inputs[offset + index_of[rid]].name in wanted:
                seen.add(rid)
                tables.append(obj)
    found = {fn.inputs[offset + index_of[t.resource_handle._id]].name for t in tables}
    unknown = [t.name for t in placeholders if t.name not in found]
    if unknown:
        raise ConversionError(f"{where}: the model reads resources this converter cannot find the owner of "
                              f"({', '.join(unknown)}); only lookup tables are supported")
    init_fn = _initializer_function(tables, where)
    graph_def = _freeze(init_fn, control_flow_v2)
    _check_fillable(graph_def, where)
    outputs = [TensorEntry(t.name, t.name, t.dtype.as_datatype_enum, t.shape.as_proto(), table.resource_handle._id)
               for t, table in zip(init_fn.outputs, tables)]
    inputs = []
    for table in tables:
        t = fn.inputs[offset + index_of[table.resource_handle._id]]
        inputs.append(TensorEntry(t.name, t.name, t.dtype.as_datatype_enum, t.shape.as_proto(),
                                  table.resource_handle._id))
    return Initializer(graph_def, outputs), inputs


def _initializer_function(tables, where):
    """A concrete function that makes each table anew and fills it; returns the new handles.

    A table restored from a SavedModel fills itself with a restored function whose captured
    handle is swapped for the new one (the official converter's way); a table made in Python
    (a Keras model in memory) gets the new handle while its initializer runs."""
    import tensorflow as tf

    plans = []
    for table in tables:
        init = table._initialize
        if hasattr(init, "get_concrete_function"):
            captured = init.get_concrete_function()._captured_inputs
            pos = [i for i, c in enumerate(captured) if c._id == table.resource_handle._id]
            if not pos:
                raise ConversionError(f"{where}: cannot find how lookup table {_name(table)} is filled")
            plans.append((table, pos[0]))
        else:
            plans.append((table, None))

    @tf.function(autograph=False)
    def resource_initializer():
        handles = []
        for table, pos in plans:
            handle = table._create_resource()
            handles.append(handle)
            if pos is not None:
                table._initialize.get_concrete_function()._captured_inputs[pos] = handle
                table._initialize()
            else:
                old = table._resource_handle
                table._resource_handle = handle
                try:
                    table._initialize()
                finally:
                    table._resource_handle = old
        return handles

    try:
        return resource_initializer.get_concrete_function()
    except ConversionError:
        raise
    except Exception as e:  # TF raises many types for tables it cannot make again
        raise ConversionError(f"{where}: cannot build the lookup tables' initializer: "
                              f"{(str(e).strip() or type(e).__name__).splitlines()[0]}") from None


def _freeze(init_fn, control_flow_v2: bool):
    from tensorflow.python.framework import convert_to_constants

    return convert_to_constants.convert_variables_to_constants_v2(
        init_fn, lower_control_flow=not control_flow_v2, aggressive_inlining=True).graph.as_graph_def()


def _check_fillable(graph_def, where) -> None:
    ops = {n.op for n in graph_def.node}
    if ops & FROM_FILE:
        files = sorted({_file_of(graph_def, n) for n in graph_def.node if n.op in FROM_FILE})
        raise ConversionError(f"{where}: a lookup table is initialised from a file ({', '.join(files)}; "
                              f"{'/'.join(sorted(ops & FROM_FILE))}): TF.js and this runtime cannot read "
                              "files; build the table from constants (tf.lookup.KeyValueTensorInitializer, "
                              "or a Keras StringLookup / IntegerLookup with a vocabulary list)")
    if not ops & TABLE_FILLERS:
        makers = sorted(o for o in ops if o not in ("Const", "Identity", "NoOp"))
        raise ConversionError(f"{where}: the model's resources ({', '.join(makers) or 'none'}) are not lookup "
                              "tables filled from constants, the only resources TF.js can make")


def _file_of(graph_def, node) -> str:
    """The vocabulary file's name a file initializer reads (its Const input), or the node's name."""
    from ..optimize.util import node_map, node_name

    nodes = node_map(graph_def)
    ref = node_name(node.input[1]) if len(node.input) > 1 else ""
    seen = set()
    while ref in nodes and nodes[ref].op == "Identity" and ref not in seen:
        seen.add(ref)
        ref = node_name(nodes[ref].input[0])
    src = nodes.get(ref)
    if src is not None and src.op == "Const":
        from tensorflow.python.framework import tensor_util

        value = tensor_util.MakeNdarray(src.attr["value"].tensor)
        if value.size == 1:
            raw = value.reshape(-1)[0]
            return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).rsplit("/", 1)[-1]
    return node.name


def _name(table) -> str:
    return getattr(table, "name", None) or type(table).__name__


def add_initializer(frozen, root, fn, where, options) -> None:
    """Give ``frozen`` the initializer of the tables ``fn`` reads and its resource inputs."""
    initializer, inputs = build_initializer(root, fn, frozen.graph_def, where, options.control_flow_v2)
    if initializer is not None:
        frozen.initializer = initializer
        frozen.inputs = inputs + frozen.inputs     # the official converter lists them first
        frozen.notes.append(f"{len(inputs)} lookup table(s) made by the model initializer")
