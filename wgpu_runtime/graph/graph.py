"""A graph model's node list as a graph: tensor names, consumers, ordering, default inputs/outputs."""
from __future__ import annotations

import inspect
from functools import lru_cache

from ..errors import GraphError, ModelFormatError
from ..ops import registry

# The one back edge a TensorFlow graph may hold: a v1 while loop's NextIteration feeding its Merge.
_LOOP_BACK_EDGE_OPS = ("NextIteration", "RefNextIteration")


def parse_ref(ref: str) -> tuple[str, int] | None:
    """'node' -> ('node', 0); 'node:1' -> ('node', 1); '^node' (control edge) -> None."""
    if ref.startswith("^"):
        return None
    name, _, idx = ref.rpartition(":")
    if name and idx.isdigit():
        return name, int(idx)
    return ref, 0


class Graph:
    def __init__(self, nodes):
        self.nodes = {}
        for n in nodes:
            if n.name in self.nodes:
                raise ModelFormatError(f"two nodes are named {n.name!r}")
            self.nodes[n.name] = n
        self.consumers: dict[str, list[str]] = {name: [] for name in self.nodes}
        for n in nodes:
            for ref in n.inputs:
                src = parse_ref(ref)
                name = src[0] if src else ref[1:]
                if name not in self.nodes:
                    raise ModelFormatError(f"node {n.name!r} reads {ref!r}, which no node produces")
                self.consumers[name].append(n.name)
        for n in nodes:
            _check_arity(n, len(self.data_inputs(n)))
        self._check_acyclic()

    def _check_acyclic(self) -> None:
        """Refuse a cycle (through data or control edges); v1 loops' NextIteration edges excepted."""
        indegree = {name: 0 for name in self.nodes}
        for name, users in self.consumers.items():
            if self.nodes[name].op not in _LOOP_BACK_EDGE_OPS:
                for user in users:
                    indegree[user] += 1
        ready = [name for name, d in indegree.items() if d == 0]
        done = 0
        while ready:
            name = ready.pop()
            done += 1
            if self.nodes[name].op in _LOOP_BACK_EDGE_OPS:
                continue
            for user in self.consumers[name]:
                indegree[user] -= 1
                if indegree[user] == 0:
                    ready.append(user)
        if done != len(self.nodes):
            stuck = sorted(name for name, d in indegree.items() if d > 0)
            raise ModelFormatError(f"the graph has a cycle through {', '.join(repr(s) for s in stuck[:5])}"
                                   f"{f' (+{len(stuck) - 5} more nodes)' if len(stuck) > 5 else ''}")

    def data_inputs(self, node) -> list[tuple[str, int]]:
        return [r for r in map(parse_ref, node.inputs) if r is not None]

    @property
    def placeholders(self) -> list:
        return [n for n in self.nodes.values() if n.op == "Placeholder"]

    def default_outputs(self) -> list[str]:
        """Outputs as TF.js picks them for a model without a signature: nodes nobody consumes."""
        return [f"{n.name}:0" for n in self.nodes.values()
                if not self.consumers[n.name] and n.op not in ("Const", "Placeholder", "NoOp")]

    def order(self, targets: list[str]) -> list:
        """The nodes needed for ``targets`` (node names), producers before consumers."""
        seen: set[str] = set()
        order = []
        for target in targets:
            stack = [(target, False)]
            while stack:
                name, done = stack.pop()
                if done:
                    order.append(self.nodes[name])
                    continue
                if name in seen:
                    continue
                if name not in self.nodes:
                    raise GraphError(f"no node named {name!r}")
                seen.add(name)
                stack.append((name, True))
                node = self.nodes[name]
                for ref in node.inputs:
                    src = parse_ref(ref)
                    dep = src[0] if src else ref[1:]
                    if dep not in seen:
                        stack.append((dep, False))
        return order


def _check_arity(node, n_inputs: int) -> None:
    most = _max_inputs(node.op)
    if most is not None and n_inputs > most:
        raise ModelFormatError(f"node {node.name!r} ({node.op}) has {n_inputs} data inputs; "
                               f"{node.op} takes at most {most}")


@lru_cache(maxsize=None)
def _max_inputs(op: str) -> int | None:
    """The most inputs an op takes, from its numpy reference's signature (None: any number)."""
    opdef = registry.get(op)
    if opdef is None:
        return None
    try:
        params = list(inspect.signature(opdef.reference).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) - 1
