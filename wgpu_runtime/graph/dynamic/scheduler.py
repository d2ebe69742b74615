"""Dataflow execution of a graph with v1 control flow (frames), as TensorFlow.js runs it.

Every value lives in a *context*: the tuple of (frame name, iteration) pairs from the root. A node
runs in a context once all its data inputs have values there (looked up in the context, then its
ancestors) and its control inputs have run; a Merge runs as soon as any input has a value.
``Switch`` gives a value on one output only: nodes that need the other never run (no value, no
execution -- TensorFlow's dead tensors). ``Enter`` moves a value into iteration 0 of a child
frame (``is_constant``: into the parent context, visible to every iteration); ``NextIteration``
into the next iteration; ``Exit`` back to the parent. Outside any frame, Exit and NextIteration
pass their input through (as TensorFlow does eagerly).

Work is a LIFO stack of ready (node, context) pairs. Values passed by NextIteration wait until
nothing else can run, innermost frames first: an iteration is then complete, and its context's
values are dropped before the next iteration starts, so a loop holds one iteration's
intermediates at a time. Outside loops, a value is dropped once its last reader in the same
context has run.
"""
from __future__ import annotations

from ...errors import GraphError
from ..graph import Graph

ROOT: tuple = ()
FRAME_OPS = frozenset({"Enter", "Exit", "NextIteration", "Merge", "Switch", "LoopCond"})


class _Node:
    __slots__ = ("node", "data", "ctrl", "children", "consumers")

    def __init__(self, node, data, ctrl):
        self.node = node
        self.data = data            # [(src, index)]
        self.ctrl = ctrl            # [src]
        self.children: list[str] = []
        self.consumers = 0          # data edges reading this node


class Schedule:
    """What a graph needs for given targets, computed once and reused by every run."""

    def __init__(self, graph: Graph, targets: list[tuple[str, int]]):
        self.targets = targets
        order = graph.order(list(dict.fromkeys(name for name, _ in targets)))
        self.info: dict[str, _Node] = {}
        for n in order:
            data = graph.data_inputs(n)
            ctrl = [r[1:] for r in n.inputs if r.startswith("^")]
            self.info[n.name] = _Node(n, data, ctrl)
        for name, inf in self.info.items():
            for src in dict.fromkeys([s for s, _ in inf.data] + inf.ctrl):
                self.info[src].children.append(name)
            for src, _ in inf.data:
                self.info[src].consumers += 1
        self.roots = [inf for inf in self.info.values() if not inf.data and not inf.ctrl]
        self.target_names = {name for name, _ in targets}
        self.has_frames = any(inf.node.op in FRAME_OPS for inf in self.info.values())


class Scheduler:
    """One run of a :class:`Schedule`. ``rt`` executes ordinary nodes
    (``rt.execute(node, inputs) -> outputs``), tells a predicate (``rt.truth(value)``) and gives
    Const values (``rt.const(name)``)."""

    def __init__(self, rt, schedule: Schedule):
        self.rt = rt
        self.s = schedule
        self.vals: dict[tuple, dict[str, list]] = {}     # context -> node -> outputs (None: no value)
        self.queued: dict[tuple, set] = {}
        self.left: dict[tuple, dict[str, int]] = {}      # context -> node -> data reads still to come
        self.consts: dict[str, list] = {}
        self.stack: list[tuple[str, tuple]] = []
        self.deferred: list[tuple[str, tuple, tuple]] = []

    # -- values ----------------------------------------------------------------------------------
    def _find(self, src: str, ctx: tuple):
        """(outputs, context found in) of ``src`` seen from ``ctx``; (None, None) if it has not run."""
        c = self.consts.get(src)
        if c is not None:
            return c, None
        while True:
            d = self.vals.get(ctx)
            if d is not None and src in d:
                return d[src], ctx
            if not ctx:
                return None, None
            ctx = ctx[:-1]

    def _value(self, src: str, idx: int, ctx: tuple):
        outs, _ = self._find(src, ctx)
        return None if outs is None or idx >= len(outs) else outs[idx]

    def _store(self, name: str, ctx: tuple, outs: list) -> None:
        self.vals.setdefault(ctx, {})[name] = outs

    def _ready(self, inf: _Node, ctx: tuple) -> bool:
        if inf.node.op == "Merge":
            return any(self._value(s, i, ctx) is not None for s, i in inf.data)
        return (all(self._value(s, i, ctx) is not None for s, i in inf.data)
                and all(self._find(s, ctx)[0] is not None for s in inf.ctrl))

    def _notify(self, name: str, ctx: tuple) -> None:
        queued = self.queued.setdefault(ctx, set())
        for child in self.s.info[name].children:
            if child not in queued and self._ready(self.s.info[child], ctx):
                queued.add(child)
                self.stack.append((child, ctx))

    def _inputs(self, inf: _Node, ctx: tuple) -> list:
        ins = []
        for src, idx in inf.data:
            outs, where = self._find(src, ctx)
            ins.append(None if outs is None or idx >= len(outs) else outs[idx])
            if where is not None and where == ctx:
                left = self.left.setdefault(ctx, {})
                n = left.get(src, self.s.info[src].consumers) - 1
                left[src] = n
                if n <= 0 and src not in self.s.target_names:
                    self.vals[ctx][src] = []       # ran (for control edges); its values are dropped
        return ins

    # -- running ---------------------------------------------------------------------------------
    def run(self, feeds: dict[str, list]) -> list:
        for inf in self.s.roots:
            n = inf.node
            if n.name in feeds:
                self._store(n.name, ROOT, feeds[n.name])
            elif n.op == "Const":
                self.consts[n.name] = self.rt.const(n.name)
            elif n.op in ("Placeholder", "_Arg"):
                raise GraphError(f"placeholder {n.name!r} is needed but was not fed")
            else:
                self.queued.setdefault(ROOT, set()).add(n.name)
                self.stack.append((n.name, ROOT))
        for name, outs in feeds.items():   # fed nodes that have inputs (PlaceholderWithDefault)
            if name in self.s.info and self.s.info[name].data:
                self._store(name, ROOT, outs)
                self.queued.setdefault(ROOT, set()).add(name)
        for inf in self.s.roots:
            self._notify(inf.node.name, ROOT)
        for name in feeds:
            if name in self.s.info and self.s.info[name].data:
                self._notify(name, ROOT)
        while True:
            while self.stack:
                name, ctx = self.stack.pop()
                self._execute(self.s.info[name], ctx)
            if not self.deferred:
                break
            depth = max(len(src) for _, _, src in self.deferred)
            src_ctx = next(src for _, _, src in self.deferred if len(src) == depth)
            batch = [d for d in self.deferred if d[2] == src_ctx]
            self.deferred = [d for d in self.deferred if d[2] != src_ctx]
            self._drop(src_ctx)
            for name, new_ctx, _ in batch:
                self._notify(name, new_ctx)
        return [self._output(name, idx) for name, idx in self.s.targets]

    def _drop(self, ctx: tuple) -> None:
        """Forget a finished iteration and every context inside it."""
        n = len(ctx)
        for table in (self.vals, self.queued, self.left):
            for c in [c for c in table if c[:n] == ctx]:
                del table[c]

    def _output(self, name: str, idx: int):
        v = self._value(name, idx, ROOT)
        if v is not None:
            return v
        where = [c for c, d in self.vals.items() if name in d]
        if len(where) == 1 and idx < len(self.vals[where[0]][name]) and self.vals[where[0]][name][idx] is not None:
            return self.vals[where[0]][name][idx]       # produced once, inside a frame
        node = self.s.info[name].node
        why = "inside a loop frame" if where else "not computed (its branch was not taken)"
        raise GraphError(f"output {idx} cannot be fetched: it is {why}", node)

    def _execute(self, inf: _Node, ctx: tuple) -> None:
        node = inf.node
        op = node.op
        ins = self._inputs(inf, ctx)
        if op == "Merge":
            k = next(k for k, v in enumerate(ins) if v is not None)
            self._store(node.name, ctx, [ins[k], self.rt.scalar(k)])
            self._notify(node.name, ctx)
        elif op == "Switch":
            taken = self.rt.truth(ins[1])
            self._store(node.name, ctx, [None, ins[0]] if taken else [ins[0], None])
            self._notify(node.name, ctx)
        elif op == "Enter":
            inner = ctx + ((str(node.attrs.get("frame_name") or ""), 0),)
            self._store(node.name, ctx if node.attrs.get("is_constant") else inner, [ins[0]])
            self.queued.setdefault(inner, set())
            self._notify(node.name, inner)
        elif op == "Exit" and ctx:
            self._store(node.name, ctx[:-1], [ins[0]])
            self._notify(node.name, ctx[:-1])
        elif op == "NextIteration" and ctx:
            frame, it = ctx[-1]
            nxt = ctx[:-1] + ((frame, it + 1),)
            self._store(node.name, nxt, [ins[0]])
            self.deferred.append((node.name, nxt, ctx))
        elif op in ("Exit", "NextIteration", "LoopCond"):
            self._store(node.name, ctx, [ins[0]])
            self._notify(node.name, ctx)
        else:
            try:
                outs = self.rt.execute(node, ins) if op != "Const" else self.rt.const(node.name)
            except (IndexError, ValueError, KeyError, TypeError) as e:   # e.g. an index the inputs make invalid
                raise GraphError(f"{type(e).__name__}: {e}", node) from e
            self._store(node.name, ctx, list(outs))
            self._notify(node.name, ctx)
