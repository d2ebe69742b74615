"""Give a residual branch its bias back from the AddN Grappler merged it into.

    AddV2|Add(AddN(a, branch), c)   =>   AddV2|Add(a, AddV2(branch, c))

Keras 3 writes a batch norm as ``conv * scale + offset``; before a residual ``Add`` layer the
graph is ``a + (conv * scale + offset)``, and Grappler's arithmetic optimizer (AddOpsRewrite)
regroups the sum by shape: ``AddN(a, conv')`` then ``+ offset`` (the scale already in the
filter, or still a Mul for a depthwise conv). The offset is then no bias of the conv any more
and nothing can fuse it. This rewrite puts the sum back in the model's own order, after which
:mod:`.fold_channel_scales` / :mod:`.normalize_bias_add` make the inner add a BiasAdd, the conv
fusions take it, and the residual add is one ``AddV2`` as in tf_keras conversions.

Only when: the AddN has exactly two inputs and the outer add is its only reader; ``c`` is a 1-D
constant of one value per output channel of the branch; the branch is a Conv2D /
DepthwiseConv2dNative / MatMul (or a Mul of one by a constant) with constant weights, read only
by the AddN; no node of it is in ``keep`` (graph outputs). The outer add keeps its name and op;
the AddN's name goes to the new inner add.
"""
from __future__ import annotations

from .fold_channel_scales import CONTRACTIONS, output_channels
from .util import consumers, const_value, node_map, node_name, output_index, rebuild


def unmerge_residual_bias(graph_def, keep=()):
    nodes = node_map(graph_def)
    readers = consumers(graph_def)
    keep = set(keep)
    skip, new_nodes = set(), []
    for outer in graph_def.node:
        match = _match(outer, nodes, readers, keep)
        if match is None:
            continue
        add_n, a, branch, c = match
        inner = type(outer)(name=add_n.name, op=outer.op, input=[branch, c])
        inner.attr["T"].CopyFrom(outer.attr["T"])
        new_outer = type(outer)(name=outer.name, op=outer.op,
                                input=[a, add_n.name] + [r for r in outer.input if r.startswith("^")])
        new_outer.attr["T"].CopyFrom(outer.attr["T"])
        new_nodes += [inner, new_outer]
        skip |= {outer.name, add_n.name}
    return rebuild(graph_def, skip=skip, extra=new_nodes) if skip else graph_def


def _data(node) -> list[str]:
    return [r for r in node.input if not r.startswith("^")]


def _match(outer, nodes, readers, keep):
    if outer.op not in ("Add", "AddV2") or len(_data(outer)) != 2:
        return None
    for add_ref, c_ref in (_data(outer), reversed(_data(outer))):
        add_n, c_node = nodes.get(node_name(add_ref)), nodes.get(node_name(c_ref))
        if add_n is None or add_n.op != "AddN" or c_node is None or c_node.op != "Const":
            continue
        if output_index(add_ref) != 0 or output_index(c_ref) != 0 or add_n.name in keep:
            continue
        if len(_data(add_n)) != 2 or len(add_n.input) != 2 or [n.name for n in readers.get(add_n.name, [])] != [outer.name]:
            continue
        c = const_value(c_node)
        if c.ndim != 1:
            continue
        for a, branch in (_data(add_n), reversed(_data(add_n))):
            if _branch_channels(branch, nodes, readers, keep, add_n) == c.shape[0]:
                return add_n, a, branch, c_ref
    return None


def _branch_channels(ref, nodes, readers, keep, reader) -> int | None:
    """Output channels of a contraction branch read only by ``reader`` (None: not one)."""
    node = nodes.get(node_name(ref))
    if node is None or output_index(ref) != 0 or node.name in keep:
        return None
    if [n.name for n in readers.get(node.name, [])] != [reader.name]:
        return None
    if node.op == "Mul":
        data = _data(node)
        if len(data) != 2:
            return None
        consts = [r for r in data if getattr(nodes.get(node_name(r)), "op", None) == "Const"]
        rest = [r for r in data if r not in consts]
        if len(consts) != 1 or len(rest) != 1:
            return None
        return _branch_channels(rest[0], nodes, readers, keep, node)
    if node.op not in CONTRACTIONS:
        return None
    weights = nodes.get(node_name(node.input[1]))
    if weights is None or weights.op != "Const":
        return None
    return output_channels(node, const_value(weights))
