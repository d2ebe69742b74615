"""Freezing: variables become constants, and the graph's inputs and outputs get signature keys.

:class:`Frozen` is what every input format produces (SavedModel, hub module, frozen .pb, Keras
file) and what the optimizer and the writer take.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConversionError


@dataclass
class TensorEntry:
    key: str            # signature key (what TF.js users feed / fetch by)
    name: str           # tensor name in the graph, "node:0"
    dtype: int          # TF DataType enum (0: unknown)
    shape: object       # TensorShapeProto or None (unknown)
    resource_id: int | None = None   # a table handle: matches an initializer output (resources.py)

    @property
    def node(self) -> str:
        return self.name.rsplit(":", 1)[0] if ":" in self.name else self.name


@dataclass
class Frozen:
    graph_def: object                       # GraphDef, every variable a Const
    inputs: list[TensorEntry]
    outputs: list[TensorEntry]
    tf_version: str                         # generatedBy
    structured_output_keys: list[str] | None = None
    notes: list[str] = field(default_factory=list)   # what the loader and the rewrites did
    # Prefix the official converter's node names have and ours lack (Keras inputs: it goes
    # through a temporary SavedModel, whose call inlines as "StatefulPartitionedCall/...").
    official_prefix: str = ""
    initializer: object = None              # resources.Initializer: the lookup tables' modelInitializer

    @property
    def output_nodes(self) -> list[str]:
        return [o.node for o in self.outputs]

    def signature_def(self):
        from tensorflow.core.protobuf import meta_graph_pb2

        sig = meta_graph_pb2.SignatureDef()
        for kind, entries in (("inputs", self.inputs), ("outputs", self.outputs)):
            for e in entries:
                info = getattr(sig, kind)[e.key]
                info.name = e.name
                if e.dtype:
                    info.dtype = e.dtype
                if e.shape is not None:
                    info.tensor_shape.CopyFrom(e.shape)
        return sig

    def signature_json(self) -> dict:
        """model.json's ``signature``: keys sorted (the order TF.js returns outputs in), entries
        encoded as protobuf's JSON mapping (as the official converter writes them)."""
        from google.protobuf.json_format import MessageToDict

        sig = self.signature_def()
        out = {kind: {k: MessageToDict(getattr(sig, kind)[k]) for k in sorted(getattr(sig, kind))}
               for kind in ("inputs", "outputs")}
        for e in self.inputs:
            if e.resource_id is not None:
                out["inputs"][e.key]["resourceId"] = e.resource_id
        return out


def freeze_function(fn):
    """A concrete function's graph with its variables as constants (TF2), function calls
    inlined, v2 control flow kept: fixed-length loops are unrolled, the others lowered to v1
    ops by the optimizer (``convert/optimize``) unless --control_flow_v2."""
    from tensorflow.python.framework import convert_to_constants

    frozen = convert_to_constants.convert_variables_to_constants_v2(fn, lower_control_flow=False,
                                                                    aggressive_inlining=True)
    return frozen.graph.as_graph_def()


def function_entries(fn, graph_def) -> tuple[list[TensorEntry], list[TensorEntry], list[str] | None]:
    """Signature entries of a concrete function: inputs keyed by their structured argument
    names, outputs by their structured keys (sorted dict keys, as tf.nest flattens them).
    Inputs that freezing removed or turned into constants are left out."""
    import tensorflow as tf

    present = {n.name: n.op for n in graph_def.node}
    args, kwargs = fn.structured_input_signature
    flat_args = tf.nest.flatten(args)
    keyed_specs = [(getattr(s, "name", None), s) for s in flat_args] + [(k, kwargs[k]) for k in sorted(kwargs)]
    user_inputs = fn.inputs[:len(keyed_specs)]     # captured variables come after
    by_node = {t.name.split(":")[0]: t for t in user_inputs}
    inputs = []
    for i, (key, spec) in enumerate(keyed_specs):
        # the placeholder is named after the spec; position is the fallback (names uniquified)
        t = by_node.get(getattr(spec, "name", None) or "")
        if t is None:
            t = user_inputs[i] if i < len(user_inputs) else None
        if t is None:
            continue
        node = t.name.split(":")[0]
        if present.get(node) in (None, "Const"):
            continue
        inputs.append(TensorEntry(key or node, t.name, t.dtype.as_datatype_enum, t.shape.as_proto()))
    structured = fn.structured_outputs
    if isinstance(structured, dict):
        keys = sorted(structured)
        flat_keys = [k for k in keys for _ in tf.nest.flatten(structured[k])]
        keyed = len(flat_keys) == len(fn.outputs) and all(len(tf.nest.flatten(structured[k])) == 1 for k in keys)
    else:
        keyed, keys = False, None
    outputs = []
    for i, t in enumerate(fn.outputs):
        key = flat_keys[i] if keyed else t.name
        outputs.append(TensorEntry(key, t.name, t.dtype.as_datatype_enum, t.shape.as_proto()))
    if len({o.key for o in outputs}) != len(outputs):
        raise ConversionError("the model's outputs do not have distinct names")
    return inputs, outputs, (keys if keyed else None)


def freeze_concrete_function(fn, tf_version: str) -> Frozen:
    graph_def = freeze_function(fn)
    inputs, outputs, keys = function_entries(fn, graph_def)
    return Frozen(graph_def, inputs, outputs, tf_version, structured_output_keys=keys)


def entries_from_graph(graph_def, names: list[str], keys: list[str] | None = None) -> list[TensorEntry]:
    """Entries for tensors (``node`` or ``node:i``) of a plain GraphDef, with dtype and shape
    as TensorFlow infers them."""
    import tensorflow as tf

    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
    out = []
    for i, name in enumerate(names):
        tensor_name = name if ":" in name else name + ":0"
        try:
            t = g.get_tensor_by_name(tensor_name)
        except (KeyError, ValueError):
            raise ConversionError(f"the graph has no tensor {name!r}") from None
        key = keys[i] if keys else name.split(":")[0] if name.endswith(":0") or ":" not in name else name
        out.append(TensorEntry(key, tensor_name, t.dtype.as_datatype_enum, t.shape.as_proto()))
    return out
