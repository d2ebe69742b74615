"""Chains of float32 element-wise ops (unary, binary with broadcasting, AddN) whose intermediate
results have no other reader -> ONE _FusedElementwise node (ops/elementwise_chain.py: one
generated kernel from the registry's expressions), named after the chain's last op. Nodes must
say they are float32 (attr T), as converted graphs do; a chain keeps at most MAX_INPUTS inputs."""
from __future__ import annotations

from ...ops.elementwise_chain import MAX_INPUTS, OP, chainable
from .common import Work, data_inputs, replace, source, text


def fuse_elementwise(work: Work) -> None:
    for node in work.list():
        if not _member(work, node):
            continue
        user = work.sole_user(node.name)
        if user is not None and _member(work, user):
            continue        # not the end of a chain: its reader's chain takes it
        steps, inputs, ops = [], [], [0]
        _build(work, node, steps, inputs, ops, root=True)
        saves = ops[0] > 1 or (node.op == "AddN" and len(data_inputs(node)) > 2)
        if saves and len(inputs) <= MAX_INPUTS:
            work.set(replace(node, op=OP, inputs=inputs, attrs={"steps": steps, "T": "float32"}))


def _member(work: Work, node) -> bool:
    arity = chainable(node.op)
    ins = data_inputs(node)
    if not arity or len(ins) != len(node.inputs) or text(node.attrs.get("T")) != "float32":
        return False
    if node.op == "AddN":
        return len(ins) >= 2
    if node.op == "LeakyRelu" and node.attrs.get("alpha") is None:
        return False
    return len(ins) == arity


def _build(work: Work, node, steps: list, inputs: list, ops: list, root: bool = False) -> str:
    """Appends node's steps after those of its absorbed producers; returns its result ("s<j>")."""
    ops[0] += 1
    args = []
    for ref in data_inputs(node):
        p = work.nodes.get(source(ref))
        if p is not None and _member(work, p) and work.sole_user(p.name) is node:
            args.append(_build(work, p, steps, inputs, ops))
        else:
            if ref not in inputs:
                inputs.append(ref)
            args.append(f"i{inputs.index(ref)}")
    if node.op == "AddN":
        acc = args[0]
        for a in args[1:]:
            steps.append(["AddV2", {}, [acc, a]])
            acc = f"s{len(steps) - 1}"
        return acc
    steps.append([node.op, dict(node.attrs), args])
    return f"s{len(steps) - 1}"
