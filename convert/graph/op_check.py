"""The op check: every op of the converted graph (library functions included) must be in the
runtime's op registry (``wgpu_runtime.ops.registry`` -- the one op table; no list here)."""
from __future__ import annotations

from wgpu_runtime.ops import registry

from ..errors import ConversionError

GRAPH_ONLY = ("Const", "Placeholder")   # not ops that run: weights and inputs


class UnsupportedOpsError(ConversionError):
    """``missing``: op -> the nodes using it."""

    def __init__(self, missing: dict[str, list[str]]):
        self.missing = dict(sorted(missing.items()))
        used = [f"{op} (used by {', '.join(nodes[:5])}" + (f" and {len(nodes) - 5} more)" if len(nodes) > 5 else ")")
                for op, nodes in self.missing.items()]
        super().__init__(f"unsupported ops ({len(self.missing)}): {'; '.join(used)}. The runtime cannot run "
                         "them; pass --skip_op_check to write the model anyway")


def all_nodes(graph_def):
    yield from graph_def.node
    for fn in graph_def.library.function:
        for n in fn.node_def:
            yield n


def missing_ops(graph_def) -> dict[str, list[str]]:
    return registry.missing_ops(n for n in all_nodes(graph_def) if n.op not in GRAPH_ONLY)


def check_ops(graph_def) -> None:
    missing = missing_ops(graph_def)
    if missing:
        raise UnsupportedOpsError(missing)
