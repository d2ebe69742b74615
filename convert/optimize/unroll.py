"""Static unrolling of v2 loops (``While`` / ``StatelessWhile``) whose trip count is fixed.

Keras recurrent layers run a ``tf.while_loop`` over the time steps. Lowered to v1 control flow
(the official converter's default) TF.js fails with "Cannot compute the outputs"; kept as v2
``While`` it fails too, and this runtime has no control-flow ops yet. When the sequence length
is fixed, the number of iterations is a constant, and the loop can be written out: the body's
nodes copied once per iteration (``<while>/iter<k>/<node>``), each copy reading the previous
one's outputs; the loop's outputs become the last copy's.

A loop is unrolled when its trip count does not depend on the data: the loop variables the
condition reads must start with static values (constants, or known dimensions of shapes:
:mod:`.static_values`) and be updated, in the body, from such variables and constants only. The trip count is then found by running the condition and those updates with
TensorFlow (at most ``MAX_ITERATIONS``). Loops with nested loops are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from .util import node_name, output_index, rebuild

LOOPS = ("While", "StatelessWhile")
MAX_ITERATIONS = 1000


@dataclass
class LoopFunction:
    nodes: list                    # NodeDefs, GraphDef naming ("node:i")
    args: list[str]                # placeholder node per argument
    arg_types: list[int]           # their DataType enums
    outputs: list[str]             # tensor ref per output


def has_loops(graph_def) -> bool:
    return any(n.op in LOOPS for n in graph_def.node)


def unroll_loops(graph_def) -> tuple[object, list[str], list[str]]:
    """(graph_def, unrolled loop names, loops left as they are with the reason)."""
    from .static_values import StaticValues

    loops = [n for n in graph_def.node if n.op in LOOPS]
    if not loops:
        return graph_def, [], []
    library = {f.signature.name: f for f in graph_def.library.function}
    static_value = StaticValues(graph_def)
    with static_value.graph.as_default():   # its library is what function_def_to_graph_def looks in
        skip, extra, rewire, done, left = set(), [], {}, [], []
        for loop in loops:
            body = _function(library, loop.attr["body"].func.name)
            cond = _function(library, loop.attr["cond"].func.name)
            reason = _nested_loop(body, library) or _nested_loop(cond, library)
            inits = [r for r in loop.input if not r.startswith("^")]
            trips = None if reason else _trip_count(cond, body, [static_value(r) for r in inits])
            if isinstance(trips, str):
                reason, trips = trips, None
            if trips is None:
                left.append(f"{loop.name}: {reason}")
                continue
            nodes, finals = _unrolled(loop.name, body, inits, trips)
            extra += nodes
            skip.add(loop.name)
            for j, ref in enumerate(finals):
                rewire[f"{loop.name}:{j}"] = ref
                if j == 0:
                    rewire[loop.name] = ref
            done.append(f"{loop.name} ({trips} iterations)")
    if not skip:
        return graph_def, done, left
    out = rebuild(graph_def, skip=skip, extra=extra, rewire=rewire)
    return out, done, left


def _function(library, name) -> LoopFunction:
    from tensorflow.python.framework.function_def_to_graph import function_def_to_graph_def

    fdef = library[name]
    gd, nested_to_flat = function_def_to_graph_def(fdef)
    args = [a.name for a in fdef.signature.input_arg]
    types = [a.type for a in fdef.signature.input_arg]
    outputs = [nested_to_flat[fdef.ret[a.name]] for a in fdef.signature.output_arg]
    return LoopFunction([n for n in gd.node if n.name not in set(args)], args, types, outputs)


def _nested_loop(fn: LoopFunction, library) -> str | None:
    for n in fn.nodes:
        if n.op in LOOPS or n.op in ("If", "StatelessIf", "Case", "StatelessCase"):
            return f"it holds control flow ({n.op} {n.name})"
        if n.op in library or n.op in ("PartitionedCall", "StatefulPartitionedCall"):
            return f"it calls a function ({n.name})"
    return None


def _arg_deps(fn: LoopFunction, ref: str) -> set[int]:
    """Indices of the arguments ``ref`` depends on (data and control edges)."""
    by_name = {n.name: n for n in fn.nodes}
    arg_index = {a: i for i, a in enumerate(fn.args)}
    seen, stack, deps = set(), [node_name(ref)], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in arg_index:
            deps.add(arg_index[name])
        elif name in by_name:
            stack += [node_name(r) for r in by_name[name].input]
    return deps


def _trip_count(cond: LoopFunction, body: LoopFunction, init_values):
    """The number of iterations, or a string saying why it is not fixed. ``init_values``: the
    loop variables' initial values where they are static (else None)."""
    static = {j for j, v in enumerate(init_values) if v is not None}
    updates = {j: _arg_deps(body, body.outputs[j]) for j in range(len(body.outputs))}
    changed = True
    while changed:
        changed = False
        for j in sorted(static):
            if not updates[j] <= static:
                static.discard(j)
                changed = True
    needed = _arg_deps(cond, cond.outputs[0])
    if not needed <= static:
        return "its trip count depends on values computed at run time"
    return _simulate(cond, body, {j: init_values[j] for j in static}, needed, updates)


def _simulate(cond: LoopFunction, body: LoopFunction, init_values, needed, updates):
    import tensorflow as tf

    # Only the static variables that the condition needs, and those their updates need.
    track = set(needed)
    grew = True
    while grew:
        grew = False
        for j in list(track):
            if not updates[j] <= track:
                track |= updates[j]
                grew = True
    values = {j: init_values[j] for j in track}

    def graph_of(fn: LoopFunction):
        from tensorflow.core.framework import graph_pb2

        gd = graph_pb2.GraphDef()
        for i, a in enumerate(fn.args):
            ph = gd.node.add(name=a, op="Placeholder")
            ph.attr["dtype"].type = fn.arg_types[i]
        gd.node.extend(fn.nodes)
        g = tf.Graph()
        with g.as_default():
            tf.graph_util.import_graph_def(gd, name="")
        return g

    cond_graph, body_graph = graph_of(cond), graph_of(body)
    with tf.compat.v1.Session(graph=cond_graph) as cs, tf.compat.v1.Session(graph=body_graph) as bs:
        for k in range(MAX_ITERATIONS + 1):
            feed = {f"{cond.args[j]}:0": values[j] for j in needed}
            if not bool(cs.run(cond.outputs[0], feed_dict=feed)):
                return k
            fetch = {j: body.outputs[j] for j in track}
            feed = {f"{body.args[j]}:0": values[j] for j in track}
            values = bs.run(fetch, feed_dict=feed)
    return f"it runs more than {MAX_ITERATIONS} iterations"


def _unrolled(loop_name: str, body: LoopFunction, inits: list[str], trips: int):
    """The body copied ``trips`` times; returns (nodes, final refs per loop variable)."""
    current = list(inits)
    nodes = []
    for k in range(trips):
        prefix = f"{loop_name}/iter{k}/"
        args = {a: current[i] for i, a in enumerate(body.args)}

        def ref(r: str) -> str:
            control = r.startswith("^")
            name = node_name(r)
            if name in args:
                return None if control else args[name] if output_index(r) == 0 else None
            new = prefix + name
            return "^" + new if control else f"{new}:{output_index(r)}"

        for n in body.nodes:
            copy = type(n)()
            copy.CopyFrom(n)
            copy.name = prefix + n.name
            refs = [ref(r) for r in n.input]
            del copy.input[:]
            copy.input.extend(r for r in refs if r is not None)
            nodes.append(copy)
        current = [ref(o) for o in body.outputs]
    return nodes, current
