"""``library.function`` definitions (the bodies of While / If / StatelessWhile / StatelessIf) as
graphs the scheduler runs like the main graph.

A FunctionDef names its node outputs ``node:output_arg:index`` and its own inputs by argument
name. Both are rewritten to the main graph's ``node:flat_index`` form: the flat index of an
output argument is the number of outputs of the arguments before it, which needs the op's
output-argument names when it has several (the table below, from TensorFlow's op definitions;
an op with one output argument -- a list or not -- is indexed directly). Arguments become nodes
of op ``_Arg``, fed by the caller; weights of Const nodes inside functions are in the manifest
under the node's name, like any Const.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...dtypes import from_tf
from ...errors import ModelFormatError
from ...format.nodes import NodeDef, decode_node
from ..graph import Graph

_FUSED_BN = ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2", "reserve_space_3")

# TF ops with more than one output argument: their names in order. A list-valued argument's
# length comes from an attr (see _arg_length).
OUTPUT_ARGS = {
    "Switch": ("output_false", "output_true"),
    "Merge": ("output", "value_index"),
    "TopKV2": ("values", "indices"),
    "Unique": ("y", "idx"),
    "UniqueV2": ("y", "idx"),
    "ListDiff": ("out", "idx"),
    "NonMaxSuppressionV4": ("selected_indices", "valid_outputs"),
    "NonMaxSuppressionV5": ("selected_indices", "selected_scores", "valid_outputs"),
    "TensorListPopBack": ("output_handle", "tensor"),
    "TensorListConcat": ("tensor", "lengths"),
    "TensorListConcatV2": ("tensor", "lengths"),
    "TensorArrayV3": ("handle", "flow"),
    "TensorArrayConcatV3": ("value", "lengths"),
    "FusedBatchNorm": _FUSED_BN[:5],
    "FusedBatchNormV2": _FUSED_BN[:5],
    "FusedBatchNormV3": _FUSED_BN,
    "MaxPoolWithArgmax": ("output", "argmax"),
    "SparseFillEmptyRows": ("output_indices", "output_values", "empty_row_indicator", "reverse_index_map"),
    "SparseReshape": ("output_indices", "output_shape"),
    "StringSplit": ("indices", "values", "shape"),
    "StringNGrams": ("ngrams", "ngrams_splits"),
    "RaggedGather": ("output_nested_splits", "output_dense_values"),
    "RaggedRange": ("rt_nested_splits", "rt_dense_values"),
    "LookupTableExportV2": ("keys", "values"),
}


def _arg_length(node: NodeDef, arg: str) -> int:
    if node.op == "RaggedGather" and arg == "output_nested_splits":
        return int(node.attrs.get("OUTPUT_RAGGED_RANK") or 1)
    return 1


def flat_index(node: NodeDef, arg: str, index: int) -> int:
    args = OUTPUT_ARGS.get(node.op)
    if args is None or arg not in args:
        return index
    return sum(_arg_length(node, a) for a in args[: args.index(arg)]) + index


@dataclass
class Function:
    name: str
    graph: Graph
    args: list[str]                      # _Arg node names, in input order
    outputs: list[tuple[str, int]]       # the returned tensors, in output order
    arg_dtypes: list[str | None]


def parse_function(raw: dict, where: str = "") -> Function:
    sig = raw.get("signature") or {}
    name = sig.get("name") or "?"
    where = f"{where}function {name!r}"
    raw_nodes = raw.get("nodeDef") or []
    nodes = [decode_node(n, where) for n in raw_nodes]
    by_name = {n.name: n for n in nodes}
    args = [a.get("name") for a in sig.get("inputArg") or []]
    arg_dtypes = [from_tf(a["type"]) if "type" in a else None for a in sig.get("inputArg") or []]

    def ref(r: str) -> str:
        if r.startswith("^"):
            return r
        parts = r.split(":")
        if len(parts) == 1 or (len(parts) == 2 and parts[0] in args):
            return parts[0]                                   # an argument (or a node's output 0)
        if len(parts) == 3:
            src = by_name.get(parts[0])
            if src is None:
                raise ModelFormatError(f"{where}: input {r!r} names no node")
            return f"{parts[0]}:{flat_index(src, parts[1], int(parts[2]))}"
        return r

    arg_nodes = [NodeDef(a, "_Arg", [], {"index": i, "dtype": d}) for i, (a, d) in enumerate(zip(args, arg_dtypes))]
    body = [NodeDef(n.name, n.op, [ref(r) for r in n.inputs], n.attrs, n.device) for n in nodes]
    graph = Graph(arg_nodes + body)
    rets = raw.get("ret") or {}
    outputs = []
    for out in sig.get("outputArg") or []:
        r = rets.get(out.get("name"))
        if r is None:
            raise ModelFormatError(f"{where}: output {out.get('name')!r} has no ret entry")
        src, _, idx = ref(r).partition(":")
        outputs.append((src, int(idx or 0)))
    return Function(name, graph, args, outputs, arg_dtypes)


def parse_library(functions: list[dict], where: str = "") -> dict[str, Function]:
    out = {}
    for raw in functions or []:
        f = parse_function(raw, where)
        out[f.name] = f
    return out
