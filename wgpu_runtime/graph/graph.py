"""A graph model's node list as a graph: tensor names, consumers, ordering, default inputs/outputs."""
from __future__ import annotations

from ..errors import GraphError, ModelFormatError


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
