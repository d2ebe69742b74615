"""The dynamic executor: runs graph models the static planner cannot -- v1 control flow (frames),
v2 functional control flow (While/If over library functions), TensorList/TensorArray, ops whose
output shapes depend on data (Where, NonMaxSuppression, Unique...) and host ops fed by the GPU.

The part of the main graph in front of its control flow and host steps (its *static island*:
island.py) runs first as one static plan; its outputs enter the run below as device values.
Every other node runs one at a time in dataflow order (scheduler.py). Where each runs:

* **GPU**: every op with a kernel, through a per-node :class:`~.programs.Program` (the node's
  lowering, prepared once per input shapes); the dispatches are recorded into one open command
  encoder, so consecutive GPU nodes are one submit, as in the static executor;
* **host, folded**: an op whose inputs are all constants or shape arithmetic (loop counters,
  indices, shapes), or all tiny int32/bool host values (a loop bound fed as an input), runs its numpy
  reference, as the static planner folds constants -- this is what keeps loop conditions and
  indices off the GPU;
* **host, data**: an op without a kernel (NMS, Where, Unique, strings, hash tables...) reads
  back exactly the device inputs it consumes -- one submit and one mapped buffer for all of them
  -- and its outputs are uploaded only if a GPU op consumes them;
* **runtime**: control flow and TensorList/TensorArray bookkeeping (ops whose ``OpDef.runtime`` is set: ops/runtime.py),
  which move tensors by reference and run registry ops for the data movement (stack, slice) on
  wherever the tensors are.

A read-back is the only synchronisation point: a predicate computed on the GPU (a loop condition
on data) costs one 4-byte read per test; a loop counter costs nothing.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...dtypes import HOST_ONLY, STRING, host_array, host_numpy_dtype
from ...errors import GraphError, UnsupportedOpError
from ...format.nodes import NodeDef, decode_node
from ...ops import registry
from ...ops.registry import Tensor
from ...memory import Buf, nbytes_of
from ..graph import Graph, parse_ref
from .functions import Function, parse_library
from .island import IslandRunner
from .programs import Program
from .scheduler import FRAME_OPS, Schedule, Scheduler
from .values import Stream, Value

ISLANDS = os.environ.get("WGPU_RUNTIME_STATIC_ISLAND", "1") != "0"   # island.py; 0: node by node only
_PROGRAMS = 512          # prepared node programs kept (LRU)
_SCHEDULES = 32


def _is_runtime_op(name: str) -> bool:
    op = registry.get(name)
    return op is not None and op.runtime is not None


def needs_dynamic(graph, artifacts=None) -> bool:
    """Whether a model needs the dynamic executor: control flow or runtime ops, string or
    resource inputs, or a ``modelInitializer`` (hash tables)."""
    return (any(n.op in FRAME_OPS or _is_runtime_op(n.op) for n in graph.nodes.values())
            or any(n.attrs.get("dtype") in (STRING, "resource") for n in graph.placeholders)
            or bool(artifacts is not None and artifacts.model_initializer))


def function_nodes(artifacts) -> list:
    """Every node of the model's library functions (for the op check at load)."""
    return [n for f in parse_library(artifacts.functions).values() for n in f.graph.nodes.values()]


class DynamicExecutor:
    """Runs a GraphModel's graph node by node (see the module docstring)."""

    def __init__(self, model):
        self.model = model
        self.device = model.device
        self.stream = Stream(model.device)
        self.functions: dict[str, Function] = parse_library(model.artifacts.functions)
        missing = registry.missing_ops(n for f in self.functions.values() for n in f.graph.nodes.values()
                                       if n.op not in ("_Arg", "Const", "Placeholder"))
        if missing:
            raise UnsupportedOpError(missing)
        self.resources: dict = {}
        self._programs: OrderedDict = OrderedDict()
        self._schedules: OrderedDict = OrderedDict()
        self._consts: dict[str, list[Value]] = {}
        self._synthetic: dict = {}
        self.stats = {"gpu_nodes": 0, "host_nodes": 0, "folded_nodes": 0, "runtime_nodes": 0}
        self._resource_feeds: dict[str, Value] | None = None
        self._islands: dict = {}

    # -- the model initializer (hash tables) ------------------------------------------------------
    def _resources(self) -> dict[str, list[Value]]:
        """Run the model's ``modelInitializer`` graph once; its outputs (table handles) feed the
        inference graph's resource inputs with the same ``resourceId``."""
        if self._resource_feeds is None:
            self._resource_feeds = {}
            art = self.model.artifacts
            if art.model_initializer:
                raw = json.loads(Path(art.path).read_text())
                nodes = [decode_node(n, f"{art.path}: modelInitializer") for n in art.model_initializer.get("node", [])]
                graph = Graph(nodes)
                outs = ((raw.get("initializerSignature") or {}).get("outputs") or {})
                named = [(k, o) for k, o in outs.items() if "name" in o]
                targets = [parse_ref(o["name"]) for _, o in named]
                sinks = [(n.name, 0) for n in nodes if not graph.consumers[n.name] and n.op != "Const"]
                values = self._schedule_run(graph, ("init",), targets + [t for t in sinks if t not in targets], {})
                by_id = {o.get("resourceId"): v for (_, o), v in zip(named, values) if o.get("resourceId") is not None}
                for spec in ((raw.get("signature") or {}).get("inputs") or {}).values():
                    rid = spec.get("resourceId")
                    if rid is not None and rid in by_id:
                        self._resource_feeds[parse_ref(spec["name"])[0]] = by_id[rid]
        return {k: [v] for k, v in self._resource_feeds.items()}

    # -- entry point -----------------------------------------------------------------------------
    def run(self, feeds: dict[str, tuple[np.ndarray, str]], targets: list[tuple[str, int]]) -> list[np.ndarray]:
        """feeds: placeholder -> (array in device layout, dtype); targets: (node, output).
        The graph's static island (island.py), if it has one, runs first as one plan."""
        values = {name: [Value(arr.shape, dtype, host=arr)] for name, (arr, dtype) in feeds.items()}
        values.update({k: v for k, v in self._resources().items() if k not in values})
        key = tuple(targets)
        runner = self._islands.get(key)
        if runner is None:
            runner = self._islands[key] = IslandRunner(self.model, targets, enabled=ISLANDS)
        keep: list = []         # the island's output tensors: alive until this run has read its outputs
        seeded = runner.run(feeds, keep)
        if seeded is None:
            outs = self._schedule_run(self.model.graph, ("main", key), targets, values)
        else:
            values.update(seeded)
            outs = self._schedule_run(runner.island.graph, ("island", key, runner.island.nodes), targets, values)
        result = self.to_host(outs)
        del keep
        return result

    def to_host(self, values: list[Value]) -> list[np.ndarray]:
        for v in values:
            if v.obj is not None:
                raise GraphError(f"a {v.dtype} value (a TensorList, TensorArray or table handle) "
                                 "cannot be an output")
        self._read([v for v in values if v.host is None])
        return [np.array(v.host, copy=True) for v in values]

    def _schedule_run(self, graph, key, targets, feeds) -> list[Value]:
        sched = self._schedules.get(key)
        if sched is None:
            sched = self._schedules[key] = Schedule(graph, targets)
            while len(self._schedules) > _SCHEDULES:
                self._schedules.popitem(last=False)
        return Scheduler(self, sched).run(feeds)

    # -- the runtime interface (scheduler + runtime ops) ----------------------------------------
    def const(self, name: str) -> list[Value]:
        v = self._consts.get(name)
        if v is None:
            w = self.model.weights.get(name)
            if w is None:
                raise GraphError(f"Const node {name!r} has no weight in the manifest")
            v = self._consts[name] = [Value.of(w, weight_key=name)]
        return v

    def scalar(self, k: int) -> Value:
        return Value.of(np.int32(k))

    def truth(self, v: Value) -> bool:
        return bool(np.reshape(self.host(v), -1)[0])

    def host(self, v: Value) -> np.ndarray:
        if v.obj is not None:
            raise GraphError(f"a {v.dtype} value has no array")
        if v.host is None:
            self._read([v])
        return v.host

    def value(self, array, dtype: str | None = None) -> Value:
        a = host_array(array if dtype is None else np.asarray(array).astype(dtype))
        return Value.of(a)

    def opaque(self, obj, dtype: str = "variant") -> Value:
        return Value.opaque(obj, dtype)

    def obj(self, v: Value):
        if v.obj is None:
            raise GraphError(f"expected a TensorList / TensorArray / table handle, got a {v.dtype} tensor")
        return v.obj

    def on_device(self, v: Value) -> bool:
        return v.host is None and v.dev is not None

    def shape(self, v: Value) -> tuple:
        return v.shape

    def dtype(self, v: Value) -> str:
        return v.dtype

    def call(self, name: str, inputs: list[Value]) -> list[Value]:
        fn = self.functions.get(name)
        if fn is None:
            raise GraphError(f"the model has no library function {name!r}")
        if len(inputs) != len(fn.args):
            raise GraphError(f"function {name!r} takes {len(fn.args)} inputs, got {len(inputs)}")
        feeds = {a: [v] for a, v in zip(fn.args, inputs)}
        return self._schedule_run(fn.graph, ("fn", name), fn.outputs, feeds)

    def op(self, name: str, attrs: dict, inputs: list[Value]) -> list[Value]:
        """Run a registry op on values (data movement for runtime ops: stack, slice...)."""
        key = (name, repr(sorted(attrs.items())))
        node = self._synthetic.get(key)
        if node is None:
            node = self._synthetic[key] = NodeDef(f"_{name}", name, [], dict(attrs))
        return self.execute(node, inputs)

    # -- one node --------------------------------------------------------------------------------
    def execute(self, node, ins: list[Value]) -> list[Value]:
        op = registry.get(node.op)
        if op is None:
            raise UnsupportedOpError({node.op: [node.name]})
        if op.runtime is not None:
            self.stats["runtime_nodes"] += 1
            return list(op.runtime(self, node.attrs, ins))
        if any(v.obj is not None for v in ins) and not op.shape_only:
            if node.op in _FORWARDS:
                return list(ins[:len(op.shape(node.attrs, [Tensor(v.shape, v.dtype) for v in ins]))])
            raise GraphError("a TensorList / TensorArray / table handle reached an op that needs a tensor", node)
        if op.shape_only:
            arrays = [np.broadcast_to(np.zeros((), host_numpy_dtype(v.dtype)), v.shape) if v.host is None else v.host
                      for v in ins]
            return [Value.of(o) for o in self._reference(op, node, arrays)]
        if (op.lower is None or all(v.const for v in ins) or _small_on_host(ins)
                or any(v.dtype in HOST_ONLY for v in ins)):     # reshapes, slices... of strings
            self.stats["host_nodes" if op.lower is None else "folded_nodes"] += 1
            self._read([v for v in ins if v.host is None])
            outs = self._reference(op, node, [v.host for v in ins])
            const = all(v.const for v in ins)
            values = []
            for o in outs:
                v = Value.of(o, const=const)
                v.weight_key = next((i.weight_key for i in ins if i.weight_key is not None
                                     and _same_bytes(v.host, i.host)), None)
                values.append(v)
            return values
        self.stats["gpu_nodes"] += 1
        return self._gpu(node, op, ins)

    def _reference(self, op, node, arrays):
        try:
            return op.run_reference(node.attrs, arrays)
        except (GraphError, UnsupportedOpError):
            raise
        except (ValueError, IndexError, KeyError, TypeError) as e:
            raise GraphError(f"{e}", node) from e

    def _gpu(self, node, op, ins: list[Value]) -> list[Value]:
        n = len(ins)
        host_pos = [i for i in range(n) if op.is_host_input(i, n, node.attrs)]
        self._read([ins[i] for i in host_pos if ins[i].host is None])
        sig, tensors, bufs = [], [], []
        for i, v in enumerate(ins):
            if v.dtype in HOST_ONLY or v.obj is not None:
                raise GraphError(f"input {i} is a {v.dtype} tensor, which cannot live on the GPU", node)
            if i in host_pos:
                sig.append(("h", v.shape, v.dtype, v.host.tobytes()))
                tensors.append(Tensor(v.shape, v.dtype, value=v.host))
                bufs.append(None)
            elif v.dev is None and v.weight_key is not None:
                sig.append(("w", v.weight_key))
                t = Tensor(v.shape, v.dtype, value=v.host)
                t.weight_key = v.weight_key
                tensors.append(t)
                bufs.append(None)
            else:
                if v.dev is None:
                    v.dev = self.stream.upload(v.host, v.dtype)
                sig.append(("d", v.shape, v.dtype))
                tensors.append(Tensor(v.shape, v.dtype, buf=Buf(nbytes_of(v.shape), "input", label=f"in{i}")))
                bufs.append(v.dev)
        key = (id(node), tuple(sig))
        prog = self._programs.get(key)
        if prog is None:
            try:
                prog = Program(self.model, self.device, node, op, tensors)
            except (GraphError, UnsupportedOpError):
                raise
            except (ValueError, IndexError, KeyError, TypeError) as e:
                raise GraphError(f"{e}", node) from e
            self._programs[key] = prog
            while len(self._programs) > _PROGRAMS:
                self._programs.popitem(last=False)
        else:
            self._programs.move_to_end(key)
        return prog.run(self.stream, bufs)

    def _read(self, values: list[Value]) -> None:
        todo = list({id(v): v for v in values if v.host is None}.values())
        if todo:
            for v, arr in zip(todo, self.stream.read(todo)):
                v.host = arr


# ops that forward their inputs unchanged: they pass TensorLists and handles through too
_FORWARDS = frozenset({"Identity", "IdentityN", "Snapshot", "StopGradient", "PlaceholderWithDefault", "Print"})
_SMALL = 64   # elements: ops on host values this small run on the host (loop bounds fed as inputs)


def _small_on_host(ins: list[Value]) -> bool:
    """Every input is a tiny int32/bool host value (a loop bound or index fed as a model input):
    numpy beats a GPU round trip, and a predicate computed here needs no read-back. Float data
    stays on the GPU whatever its size."""
    return all(v.host is not None and v.size <= _SMALL and v.dtype in ("int32", "bool") for v in ins)


def _same_bytes(a, b) -> bool:
    return (a is not None and b is not None and a.dtype == b.dtype and a.size == b.size and a.size > 0
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])
