"""A graph model on one device against its references, and where it first goes wrong.

References for a model's outputs:

* the numpy reference executor (conformance/reference.py), always, on the same inputs;
* stored outputs next to model.json, when there are any (the convention, docs/conformance.md):
  ``io.npz`` with keys ``in<S>:<input>`` / ``out<S>:<output>`` (S: an optional set suffix; an
  ``out_dequant<S>:`` key, TensorFlow's output from the weights as stored, is preferred for a
  quantized model), and ``reference.npz`` with ``x`` (the single input) and ``y`` (the single
  output, from the weights as stored). Without stored inputs, seeded random inputs are used.

The reference runs the graph as the file has it; the GPU runs it after the runtime's load-time
rewrites (which are thereby checked). On a mismatch, every intermediate tensor is read back from
the GPU in one run and walked in topological order of the file's graph: each node's reference is
applied to the node's own GPU inputs, so the first
node whose GPU output disagrees with that ("node") is where the error is born, not where it
surfaced. When no node does, the first tensor drifting from the reference executor's value
("drift") is reported, and when even that agrees, the stored outputs are what disagree
("stored reference"). Models on the dynamic executor (control flow) are judged by their
outputs only: their intermediate tensors live per loop iteration.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dtypes import from_device_array, host_array
from ..errors import InputError, WgpuRuntimeError
from ..format import load_artifacts
from ..graph.graph import Graph
from ..graph.model import GraphModel
from ..inputs import random_inputs
from ..ops import registry
from ..tolerance import MODEL, compare, op_tolerance
from . import reference
from .results import Divergence, ModelResult, OutputCheck

_IO_KEY = re.compile(r"^(in|out_dequant|out)([^:]*):(.+)$")


@dataclass
class InputSet:
    name: str                          # "io.npz", "io.npz set 1", "reference.npz", "random (seed 0)"
    inputs: dict[str, np.ndarray]      # by input name (signature key, tensor or node name)
    outputs: dict[str, np.ndarray]     # stored outputs by output name ({} for random inputs)
    labels: dict[str, str]             # output name -> "io.npz out:predictions"


def stored_sets(folder: Path, inputs, outputs) -> list[InputSet]:
    """The stored reference sets next to a model (see the module docstring)."""
    sets: list[InputSet] = []
    io = folder / "io.npz"
    if io.is_file():
        with np.load(io, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        groups: dict[str, dict[str, dict[str, tuple[str, np.ndarray]]]] = {}
        for key, value in arrays.items():
            m = _IO_KEY.match(key)
            if m:
                groups.setdefault(m[2], {}).setdefault(m[1], {})[m[3]] = (key, value)
        base_inputs = groups.get("", {}).get("in", {})
        for suffix in sorted(groups):
            g = groups[suffix]
            outs = g.get("out_dequant") or g.get("out")
            ins = g.get("in") or base_inputs
            if outs and ins:
                sets.append(InputSet(f"io.npz{' set ' + suffix if suffix else ''}",
                                     {k: v for k, (_, v) in ins.items()},
                                     {k: v for k, (_, v) in outs.items()},
                                     {k: f"io.npz {key}" for k, (key, _) in outs.items()}))
    ref = folder / "reference.npz"
    if ref.is_file():
        with np.load(ref, allow_pickle=False) as data:
            if "x" in data.files and "y" in data.files and len(inputs) == 1 and len(outputs) == 1:
                out = outputs[0].name
                sets.append(InputSet("reference.npz", {inputs[0].name: data["x"]}, {out: data["y"]},
                                     {out: "reference.npz y"}))
    return sets


def random_set(inputs, seed: int = 0) -> InputSet:
    """Seeded inputs for a model without stored ones (see inputs.random_inputs; batch 1)."""
    return InputSet(f"random (seed {seed})", random_inputs(inputs, 1, seed), {}, {})


def jsonable(value, limit: int = 16):
    """An attribute value as JSON (bytes decoded, arrays shortened)."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= limit else f"array{list(value.shape)} {value.dtype}"
    if isinstance(value, (list, tuple)):
        return [jsonable(v, limit) for v in value[:limit]] + (["..."] if len(value) > limit else [])
    if isinstance(value, dict):
        return {str(k): jsonable(v, limit) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _rewritten(node, model: GraphModel) -> str:
    """A note when the runtime's load-time rewrites changed this node (a suspect in itself)."""
    new = model.graph.nodes.get(node.name)
    if new is None or (new.inputs == node.inputs and new.attrs == node.attrs):
        return ""
    changed = sorted(k for k in set(new.attrs) | set(node.attrs) if new.attrs.get(k) != node.attrs.get(k))
    return (f" [the runtime rewrote this node at load: inputs {new.inputs}"
            + (f", attrs {', '.join(changed)} -> {jsonable({k: new.attrs.get(k) for k in changed})}" if changed else "")
            + "]")


def _describe(v) -> str:
    v = np.asarray(v)
    return f"{v.dtype}{list(v.shape)}"


class ModelUnderTest:
    """One model: its artifacts and reference sets, loaded once; checked on each device."""

    def __init__(self, path):
        self.path = str(path)
        self.artifacts = load_artifacts(path)
        if self.artifacts.format != "graph-model":
            raise InputError(f"{self.artifacts.path} is a {self.artifacts.format}: conformance runs graph models")
        self.graph = Graph(self.artifacts.nodes)       # as the file has it (no runtime rewrites)
        self._reference: dict[str, dict | str] = {}    # set name -> env, or why it failed

    def check(self, device) -> ModelResult:
        t0 = time.perf_counter()
        result = ModelResult(self.path)
        try:
            model = GraphModel(self.artifacts, device)
            sets = stored_sets(self.artifacts.path.parent, model.inputs, model.outputs) or [random_set(model.inputs)]
            for s in sets:
                self._check_set(model, s, result)
        except WgpuRuntimeError as e:
            result.passed, result.error = False, f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 -- a crash of the runtime on a model is a finding
            result.passed, result.error = False, f"{type(e).__name__}: {e}"
        result.seconds = time.perf_counter() - t0
        return result

    # -------------------------------------------------------------------------------------
    def _feeds(self, model: GraphModel, s: InputSet) -> dict[str, np.ndarray]:
        """Placeholder node -> the array the GPU sees (bool stays bool for the references)."""
        resolved = model._check_feeds(s.inputs)
        return {node: from_device_array(v, dtype) for node, (v, dtype) in resolved.items()}

    def _reference_env(self, model: GraphModel, s: InputSet, feeds, targets):
        if s.name not in self._reference:
            try:
                if reference.is_dynamic(self.graph):
                    env = reference.evaluate_dynamic(self.artifacts, self.graph, model.device, feeds, targets)
                else:
                    env = reference.evaluate(self.graph, self.artifacts.weights, feeds, targets)
                self._reference[s.name] = env
            except Exception as e:  # noqa: BLE001 -- reported; stored outputs still judge
                self._reference[s.name] = f"{type(e).__name__}: {e}"
        return self._reference[s.name]

    def _check_set(self, model: GraphModel, s: InputSet, result: ModelResult) -> None:
        names = list(s.outputs) or [spec.name for spec in model.outputs]
        targets = [model._resolve_output(n) for n in names]
        feeds = self._feeds(model, s)
        got = model.execute(s.inputs, names)
        env = self._reference_env(model, s, feeds, targets)
        failed = []
        if isinstance(env, str):     # a finding; only a failure when nothing else can judge the outputs
            result.checks.append(OutputCheck(s.name, "*", "numpy reference executor", bool(s.outputs), 0.0, 0.0,
                                             f"the numpy reference executor cannot run this model: {env}"))
            if not s.outputs:
                result.passed = False
        for name, target, g in zip(names, targets, got):
            if not isinstance(env, str):
                c = compare(g, env[target], MODEL, per="tensor")
                result.checks.append(OutputCheck(s.name, name, "numpy reference executor", c.ok, c.ulps, c.bound,
                                                 c.message))
                if not c.ok:
                    failed.append(("reference", name, target, c))
            if name in s.outputs:
                c = compare(g, s.outputs[name], MODEL, per="tensor")
                result.checks.append(OutputCheck(s.name, name, f"stored {s.labels[name]}", c.ok, c.ulps, c.bound,
                                                 c.message))
                if not c.ok:
                    failed.append(("stored", name, target, c))
        if failed:
            result.passed = False
            if result.divergence is None:
                if getattr(model, "is_dynamic", False) or reference.is_dynamic(self.graph):
                    kind, name, target, c = failed[0]
                    node = self.graph.nodes[target[0]]
                    result.divergence = Divergence(
                        node.name, node.op, jsonable(node.attrs), "unlocated",
                        f"output {name!r}: {c.message} (the model runs on the dynamic executor: "
                        "intermediate tensors are not compared)", list(node.inputs), f"{target[0]}:{target[1]}")
                else:
                    try:
                        result.divergence = self._first_divergence(model, s, feeds, targets, env, failed)
                    except Exception as e:  # noqa: BLE001 -- the outputs' verdict stands
                        kind, name, target, c = failed[0]
                        node = self.graph.nodes[target[0]]
                        result.divergence = Divergence(
                            node.name, node.op, jsonable(node.attrs), "unlocated",
                            f"output {name!r}: {c.message} (the intermediate tensors could not be compared: "
                            f"{type(e).__name__}: {e})", list(node.inputs), f"{target[0]}:{target[1]}")

    # -------------------------------------------------------------------------------------
    def _first_divergence(self, model: GraphModel, s: InputSet, feeds, targets, env, failed) -> Divergence:
        graph = self.graph
        order = [n for n in graph.order(list(dict.fromkeys(t[0] for t in targets)))
                 if n.op not in ("Placeholder", "Const")]
        wanted: list[tuple[str, int]] = []
        for node in order:                        # every tensor a node reads, and the targets
            for ref in graph.data_inputs(node):
                if graph.nodes[ref[0]].op not in ("Placeholder", "Const") and ref not in wanted:
                    wanted.append(ref)
        wanted += [t for t in targets if t not in wanted]
        values = dict(zip(wanted, model.execute(s.inputs, [f"{n}:{i}" for n, i in wanted])))
        drift = None
        for node in order:
            op = registry.get(node.op)
            ins = []
            for ref in graph.data_inputs(node):
                src = graph.nodes[ref[0]]
                if src.op == "Placeholder":
                    ins.append(host_array(feeds[src.name]))
                elif src.op == "Const":
                    ins.append(host_array(self.artifacts.weights[src.name]))
                else:
                    ins.append(values[ref])
            outs = [(i, values[(node.name, i)]) for n, i in wanted if n == node.name]
            try:
                local = [host_array(v) for v in op.run_reference(node.attrs, ins)]
            except Exception:  # noqa: BLE001 -- GPU inputs the reference rejects: judge by the chain
                local = None
            in_desc = [f"{r}: {_describe(v)}" for r, v in zip(node.inputs, ins)]
            for i, g in outs:
                if local is not None and i < len(local) and g.dtype != object:
                    tol = op_tolerance(op, node.attrs, ins, local)
                    c = compare(g, local[i], tol, per="tensor")
                    if not c.ok:
                        return Divergence(node.name, node.op, jsonable(node.attrs), "node",
                                          f"{node.name}:{i} on the GPU vs the op's numpy reference on the same "
                                          f"inputs: {c.message}{_rewritten(node, model)}", in_desc,
                                          f"{node.name}:{i} {_describe(g)}")
                if drift is None and not isinstance(env, str) and (node.name, i) in env and g.dtype != object:
                    c = compare(g, env[(node.name, i)], MODEL, per="tensor")
                    if not c.ok:
                        drift = Divergence(node.name, node.op, jsonable(node.attrs), "drift",
                                           f"{node.name}:{i} vs the numpy reference executor: {c.message} (every "
                                           "node agrees with its reference on its own GPU inputs: rounding "
                                           "accumulated past the model tolerance)", in_desc,
                                           f"{node.name}:{i} {_describe(g)}")
        if drift is not None:
            return drift
        kind, name, target, c = failed[0]
        node = graph.nodes[target[0]]
        if kind == "stored":
            error = (f"output {name!r} disagrees with the stored reference by {c.ulps:.3g} ULP of its scale "
                     f"(max abs error {c.abs_err:.3g}) while the GPU agrees with the numpy reference executor "
                     "node by node: the stored outputs (or the references) are off")
        else:
            error = f"output {name!r}: {c.message} (no intermediate tensor diverges)"
        return Divergence(node.name, node.op, jsonable(node.attrs), "stored reference" if kind == "stored" else "drift",
                          error, list(node.inputs), f"{target[0]}:{target[1]}")
