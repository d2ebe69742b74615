"""What the rewrites share: :class:`Work`, the node list being optimized (nodes by name, who
reads whom, constant values, new derived weights), and the shapes of the fused ops they build."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from ...dtypes import dtype_of
from ...format.nodes import NodeDef
from ..graph import parse_ref

CONVS = {"Conv2D": "_FusedConv2D", "_FusedConv2D": "_FusedConv2D",
         "DepthwiseConv2dNative": "FusedDepthwiseConv2dNative",
         "FusedDepthwiseConv2dNative": "FusedDepthwiseConv2dNative"}
MATMULS = {"MatMul": "_FusedMatMul", "_FusedMatMul": "_FusedMatMul"}
FUSED = {**CONVS, **MATMULS}          # op -> its fused form


def source(ref: str) -> str:
    """The node a ref reads ('n:1' -> 'n', '^n' -> 'n')."""
    src = parse_ref(ref)
    return src[0] if src else ref[1:]


def fused_ops(node) -> list[str]:
    return [o.decode() if isinstance(o, bytes) else str(o) for o in (node.attrs.get("fused_ops") or [])]


def text(v) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v or "")     # bytes of a bad model: no raise


class Work:
    """The live node list of one rewrite, edited in place: ``set`` replaces a node (same name,
    same value), ``add_const`` adds a derived weight. ``keep``: names whose node must stay as it
    is (signature outputs): never fused into a consumer."""

    def __init__(self, nodes: list, weights: Mapping, keep: frozenset, taken: set):
        self.nodes = {n.name: n for n in nodes}
        self.weights = weights
        self.new: dict[str, np.ndarray] = {}
        self.keep = keep
        self._taken = taken           # every name in use (the original graph's too)
        self.users: dict[str, list[str]] = {name: [] for name in self.nodes}
        for n in nodes:
            for ref in n.inputs:
                self.users.setdefault(source(ref), []).append(n.name)

    def list(self) -> list:
        return list(self.nodes.values())

    def set(self, node) -> None:
        """Replace the node of that name (its value must not change) or add a new one."""
        old = self.nodes.get(node.name)
        for ref in old.inputs if old is not None else []:
            self.users[source(ref)].remove(old.name)
        for ref in node.inputs:
            self.users.setdefault(source(ref), []).append(node.name)
        self.nodes[node.name] = node
        self.users.setdefault(node.name, [])

    def value(self, ref: str):
        """The value of a data ref to a Const node (output 0), else None."""
        src = parse_ref(ref)
        node = self.nodes.get(src[0]) if src else None
        if node is None or node.op != "Const" or src[1] != 0:
            return None
        v = self.new.get(node.name)
        if v is None:
            v = self.weights.get(node.name)
        return None if v is None or getattr(v, "dtype", None) is None or v.dtype == object else v

    def add_const(self, base: str, value: np.ndarray) -> str:
        """A new Const node holding ``value`` (a derived weight); its name."""
        name, k = f"{base}/optimized", 1
        while name in self._taken:
            k += 1
            name = f"{base}/optimized_{k}"
        self._taken.add(name)
        self.set_const(name, np.ascontiguousarray(value))
        return name

    def set_const(self, name: str, value: np.ndarray) -> None:
        """Node ``name`` becomes a Const holding ``value`` (a derived weight)."""
        self.new[name] = value
        self.set(NodeDef(name, "Const", [], {"dtype": dtype_of(value)}))

    def sole_user(self, name: str):
        """The one node reading node ``name``, when it reads only output 0, once, as data; None
        when there are others (or a control edge), or ``name`` must stay."""
        users = self.users.get(name, [])
        if name in self.keep or len(users) != 1:
            return None
        user = self.nodes[users[0]]
        refs = [r for r in user.inputs if source(r) == name]
        if len(refs) != 1 or refs[0].startswith("^") or parse_ref(refs[0])[1] != 0:
            return None
        return user

    def only_output_0_read(self, name: str) -> bool:
        """Whether every reader of node ``name`` reads output 0 (as data)."""
        for u in self.users.get(name, []):
            for r in self.nodes[u].inputs:
                if source(r) == name and (r.startswith("^") or parse_ref(r)[1] != 0):
                    return False
        return True


def replace(node, **changes):
    return dataclasses.replace(node, **changes)


def controls(*nodes) -> list[str]:
    """The control inputs of ``nodes``, once each."""
    return list(dict.fromkeys(r for n in nodes for r in n.inputs if r.startswith("^")))


def data_inputs(node) -> list[str]:
    return [r for r in node.inputs if not r.startswith("^")]


def channel_vector(v, rank: int, channels: int) -> np.ndarray | None:
    """``v`` as a float64 vector of ``channels`` when it broadcasts along the last axis only of a
    rank-``rank`` result without growing it (a scalar, [C], [1, .., 1, C]); else None."""
    if v is None or v.dtype.kind != "f" or v.ndim > rank:
        return None
    if v.size == 1:
        return np.full(channels, float(v.reshape(-1)[0]))
    if v.shape[-1] != channels or any(d != 1 for d in v.shape[:-1]):
        return None
    return v.reshape(-1).astype(np.float64)
