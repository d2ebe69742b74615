"""Graph models: any TF / Keras input -> frozen graph -> optimized -> op check -> model.json +
shards. ``convert_graph`` is what the CLI calls for every ``--output_format=tfjs_graph_model``."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError
from ..options import ConvertOptions
from ..tensorflow_loader import import_tensorflow


def load(input_path: Path, input_format: str, options: ConvertOptions):
    """The :class:`~.freeze.Frozen` graph of any supported input."""
    if input_format == "tf_saved_model":
        from .saved_model import load_saved_model

        return load_saved_model(input_path, options)
    if input_format == "tf_hub":
        from .hub import load_hub

        return load_hub(input_path, options)
    if input_format == "tf_frozen_model":
        from .frozen_pb import load_frozen_pb

        return load_frozen_pb(input_path, options)
    if input_format in ("keras", "keras_keras"):
        from .keras_model import load_keras_file

        return load_keras_file(input_path, options)
    if input_format == "tfjs_layers_model":
        from .layers_model import load_layers_model

        return load_layers_model(input_path, options)
    raise ConversionError(f"no graph-model converter for --input_format={input_format}")


def convert_graph(input_path, output_dir, input_format: str, options: ConvertOptions | None = None) -> Path:
    """Convert ``input_path`` into a graph model in ``output_dir``; returns the model.json path."""
    import_tensorflow()   # isolated from an LLVM a WebGPU adapter may have loaded (tensorflow_loader.py)
    from ..optimize import optimize
    from .op_check import check_ops
    from .table_lookups import reshape_table_lookups
    from .write import write_graph_model

    options = options or ConvertOptions()
    input_path, output_dir = Path(input_path), Path(output_dir)
    if options.split_weights_by_layer:
        options.warn("--split_weights_by_layer applies to layers models; a graph model has one weight group")
    _quiet_tensorflow()
    with options.phase(f"loading and freezing {input_path.name}"):
        frozen = load(input_path, input_format, options)

    graph_def = optimize(frozen.graph_def, frozen.output_nodes, frozen.signature_def(),
                         strip_debug_ops=options.strip_debug_ops, phase=options.phase, notes=frozen.notes,
                         control_flow_v2=options.control_flow_v2)
    present = {n.name for n in graph_def.node}
    frozen.inputs = [e for e in frozen.inputs if e.node in present]
    _refuse_unfrozen_resources(graph_def, frozen, input_path)
    graph_def = reshape_table_lookups(graph_def)
    if not options.skip_op_check:
        with options.phase("checking ops against the runtime's registry"):
            check_ops(graph_def)
            if frozen.initializer is not None:
                check_ops(frozen.initializer.graph_def)
    with options.phase(f"writing {output_dir}"):
        out = write_graph_model(output_dir, graph_def, frozen, options)
    for note in frozen.notes:
        options.info(note)
    return out


def _refuse_unfrozen_resources(graph_def, frozen, input_path) -> None:
    """Resources freezing cannot turn into constants (lookup tables) stay as resource
    placeholders: each must be fed by the model initializer (``resources.py``: model.json's
    modelInitializer, matched by resourceId); one nothing would feed is refused."""
    from tensorflow.python.framework import dtypes

    fed = {e.node for e in frozen.inputs if e.resource_id is not None}
    resources = [n.name for n in graph_def.node if n.name not in fed
                 and n.op == "Placeholder" and n.attr["dtype"].type == dtypes.resource.as_datatype_enum]
    if resources:
        users = sorted({n.op for n in graph_def.node for r in n.input if r.split(":")[0] in resources})
        raise ConversionError(f"{input_path}: the model uses resources that cannot be frozen into weights "
                              f"({', '.join(users) or ', '.join(resources)}) and has no initializer that makes "
                              "them: lookup tables are converted from TF2 SavedModels and Keras models, "
                              "whose tables can be rebuilt in a modelInitializer graph")
    tables = sorted(n.name for n in graph_def.node if n.op in ("HashTable", "HashTableV2"))
    if tables:   # TF1 graphs: the table is made in the graph, filled by a table_initializer op it lacks
        raise ConversionError(f"{input_path}: the graph makes lookup tables itself ({', '.join(tables[:3])}), "
                              "filled by TF1 table initializers that this converter does not write: every "
                              "lookup would return the default value; export a TF2 SavedModel instead")
    if frozen.initializer is not None and not fed & {n.name for n in graph_def.node}:
        frozen.initializer = None        # the optimizer removed every table read: nothing to make


def _quiet_tensorflow() -> None:
    """TensorFlow's deprecation notices and absl warnings are noise for a converter's user."""
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
