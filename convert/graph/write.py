"""The graph model on disk: every Const becomes a weight (named after its node, in node order,
then the library functions' constants prefixed with the function's name), its value cleared
from the topology, and model.json + shards written through ``wgpu_runtime.format``
(temporary folder renamed into place; int64 stored as int32, float64 as float32)."""
from __future__ import annotations

from pathlib import Path

from wgpu_runtime.format import write_artifacts

from ..errors import ConversionError
from ..optimize.util import node_name

FORMAT = "graph-model"
INITIALIZER_PREFIX = "modelInitializer/"
CLEARED_TENSOR_FIELDS = ("tensor_content", "half_val", "float_val", "double_val", "int_val", "string_val",
                         "scomplex_val", "int64_val", "bool_val", "resource_handle_val", "variant_val",
                         "uint32_val", "uint64_val")


def converted_by() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"wgpu-runtime converter v{version('wgpu-runtime')}"
    except PackageNotFoundError:
        return "wgpu-runtime converter"


def extract_weights(graph_def) -> list[tuple[str, object]]:
    """(name, array) for every Const, in manifest order; the Consts keep dtype and shape only."""
    weights = _take_consts(graph_def.node)
    for fn in graph_def.library.function:
        prefix = fn.signature.name + "/"
        consts = {n.name for n in fn.node_def if n.op == "Const"}
        for n in fn.node_def:
            if n.op == "Const":
                n.name = prefix + n.name
            else:
                refs = [_prefixed(r, prefix) if node_name(r.split(":")[0]) in consts else r for r in n.input]
                del n.input[:]
                n.input.extend(refs)
        weights += _take_consts(fn.node_def)
    return weights


def extract_initializer_weights(init_graph_def, taken: set[str]) -> list[tuple[str, object]]:
    """The initializer graph's Consts as weights, after the inference graph's (one namespace:
    TF.js gives the initializer the model's weight map). A name the inference graph already
    uses is prefixed (and its readers renamed), where the official converter would let one
    weight overwrite the other."""
    clashes = {n.name for n in init_graph_def.node if n.op == "Const" and n.name in taken}
    if clashes:
        renamed = {}
        for name in clashes:
            new, i = f"{INITIALIZER_PREFIX}{name}", 1
            while new in taken or new in renamed.values():
                new, i = f"{INITIALIZER_PREFIX}{name}_{i}", i + 1
            renamed[name] = new
        for n in init_graph_def.node:
            if n.name in renamed:
                n.name = renamed[n.name]
            refs = [_renamed(r, renamed) for r in n.input]
            del n.input[:]
            n.input.extend(refs)
    return _take_consts(init_graph_def.node)


def _renamed(ref: str, renamed: dict[str, str]) -> str:
    name = node_name(ref)
    if name not in renamed:
        return ref
    return ref.replace(name, renamed[name], 1)


def _prefixed(ref: str, prefix: str) -> str:
    return "^" + prefix + ref[1:] if ref.startswith("^") else prefix + ref


def _take_consts(nodes) -> list[tuple[str, object]]:
    from tensorflow.python.framework import tensor_util

    out = []
    for n in nodes:
        if n.op != "Const":
            continue
        tensor = n.attr["value"].tensor
        out.append((n.name, tensor_util.MakeNdarray(tensor)))
        for f in CLEARED_TENSOR_FIELDS:
            tensor.ClearField(f)
    return out


def model_json(graph_def, frozen, metadata: dict | None) -> dict:
    from google.protobuf.json_format import MessageToDict

    out = {"format": FORMAT, "generatedBy": frozen.tf_version, "convertedBy": converted_by(),
           "signature": frozen.signature_json(), "modelTopology": MessageToDict(graph_def)}
    if metadata:
        out["userDefinedMetadata"] = metadata
    init = frozen.initializer
    if init is not None:
        out["modelInitializer"] = MessageToDict(init.graph_def)
        out["initializerSignature"] = {"outputs": {
            e.key: {**MessageToDict(_tensor_info(e)), "resourceId": e.resource_id} for e in init.outputs}}
    return out


def _tensor_info(entry):
    from tensorflow.core.protobuf import meta_graph_pb2

    info = meta_graph_pb2.TensorInfo(name=entry.name, dtype=entry.dtype)
    if entry.shape is not None:
        info.tensor_shape.CopyFrom(entry.shape)
    return info


def write_graph_model(output_dir: Path, graph_def, frozen, options) -> Path:
    weights = extract_weights(graph_def)
    if frozen.initializer is not None:
        weights += extract_initializer_weights(frozen.initializer.graph_def, {name for name, _ in weights})
    metadata = dict(options.metadata or {})
    if options.use_structured_outputs_names:
        if not frozen.structured_output_keys:
            raise ConversionError("--use_structured_outputs_names needs outputs that are a flat dict of tensors")
        metadata["structuredOutputKeys"] = list(frozen.structured_output_keys)
    names = [name for name, _ in weights]
    quantize = options.quantize_fn(names, {n: frozen.official_prefix + n for n in names} if frozen.official_prefix else None)
    for glob in options.unmatched_globs:
        options.warn(f"{glob} matches no weight")
    try:
        return write_artifacts(output_dir, model_json(graph_def, frozen, metadata or None), [weights],
                               shard_size=options.weight_shard_size_bytes, quantize=quantize,
                               overwrite=options.overwrite)
    except FileExistsError as e:
        raise ConversionError(f"{e} (pass --overwrite to replace it)") from None
