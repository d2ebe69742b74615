"""GraphModel: a frozen TF.js graph model on a WebGPU device (numpy in, numpy out)."""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Union

import numpy as np
import numpy.typing as npt

from ..device import Device, get_device
from ..dtypes import STRING, device_dtype, dtype_of, feedable, to_device_array
from ..errors import GraphError, InputError, UnsupportedOpError
from ..format import ModelArtifacts, TensorSpec, load_artifacts
from ..memory import Buf, Uploader
from ..ops import registry
from . import executor, rewrites
from .graph import Graph, parse_ref
from .dynamic import DynamicExecutor, function_nodes, needs_dynamic
from .plan import DataDependentError, Plan, Planner


Feeds = Mapping[str, npt.ArrayLike]            # input name (signature key, tensor or node name) -> array
OutputNames = Union[str, Sequence[str], None]   # one name, several, or None: every output


class GraphModel:
    """A TF.js graph model on one WebGPU device (``load_graph_model``). ``inputs`` / ``outputs``:
    its TensorSpecs (signature order); ``predict`` and ``execute`` take and return numpy arrays."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    MAX_PLANS = 8   # plans kept per model (one per distinct set of input shapes / outputs)

    def __init__(self, artifacts: ModelArtifacts, device: Device):
        self.artifacts = artifacts
        self.device = device
        self.graph = Graph(rewrites.apply(artifacts.nodes, artifacts.weights))
        missing = registry.missing_ops(n for n in [*artifacts.nodes, *function_nodes(artifacts)]
                                       if n.op not in ("Placeholder", "Const", "_Arg"))
        if missing:
            raise UnsupportedOpError(missing)
        self.weights = artifacts.weights
        self._buffers: dict[str, Buf] = {}
        self._plans: OrderedDict[tuple, Plan] = OrderedDict()
        self.inputs, self.outputs = self._io_specs()
        self._input_keys = {}
        self._preload_weights()
        self._dynamic = DynamicExecutor(self) if needs_dynamic(self.graph, artifacts) else None

    # -- public API -------------------------------------------------------------------------
    def predict(self, x: npt.ArrayLike | Sequence[npt.ArrayLike] | Feeds) -> np.ndarray | list[np.ndarray]:
        """x: one array, a list (in ``inputs`` order) or a dict by input name. One output: an
        array; several: a list in ``outputs`` order."""
        if isinstance(x, dict):
            feeds = x
        elif isinstance(x, (list, tuple)):
            if len(x) != len(self.inputs):
                raise InputError(f"model has {len(self.inputs)} inputs, got {len(x)} arrays")
            feeds = {spec.name: a for spec, a in zip(self.inputs, x)}
        else:
            if len(self.inputs) != 1:
                raise InputError(f"model has {len(self.inputs)} inputs ({', '.join(s.name for s in self.inputs)}): "
                                 "pass a list or a dict")
            feeds = {self.inputs[0].name: x}
        outs = self.execute(feeds, [s.name for s in self.outputs])
        return outs[0] if len(outs) == 1 else outs

    def execute(self, feeds: Feeds, outputs: OutputNames = None) -> np.ndarray | list[np.ndarray]:
        """feeds: {input name (signature key, tensor name or node name): array}. outputs: a name
        or a list of names (signature keys or tensor names 'node:i'); default: all outputs."""
        with self.device.lock:      # one inference at a time per device (Device.lock)
            return self._execute(feeds, outputs)

    def _execute(self, feeds: Feeds, outputs: OutputNames):
        single = isinstance(outputs, str)
        if self._dynamic is None:
            try:
                plan, arrays = self.prepare(feeds, outputs)
            except DataDependentError:      # a host op on data / a data-dependent shape
                self._dynamic = DynamicExecutor(self)
            else:
                result = executor.run(self.device, plan, arrays)
                return result[0] if single else result
        names = [outputs] if isinstance(outputs, str) else list(outputs or [s.name for s in self.outputs])
        resolved = self._check_feeds(feeds)
        result = self._dynamic.run(resolved, [self._resolve_output(n) for n in names])
        return result[0] if single else result

    @property
    def is_dynamic(self) -> bool:
        """Whether the model runs on the dynamic executor (control flow, data-dependent shapes)
        rather than as one prepared plan."""
        return self._dynamic is not None

    def prepare(self, feeds: Feeds, outputs: OutputNames = None) -> tuple[Plan, dict[str, np.ndarray]]:
        """The (cached) plan for these inputs' shapes and outputs, and the inputs in device layout."""
        if self._dynamic is not None:
            raise GraphError("this model has control flow or data-dependent shapes: it runs on the "
                             "dynamic executor, node by node, not as one prepared plan")
        names = [outputs] if isinstance(outputs, str) else list(outputs or [s.name for s in self.outputs])
        resolved = self._check_feeds(feeds)
        targets = [self._resolve_output(n) for n in names]
        return self._plan(resolved, targets), {k: v for k, (v, _) in resolved.items()}

    def _plan(self, resolved, targets) -> Plan:
        key = (tuple(sorted((k, v.shape, d) for k, (v, d) in resolved.items())), tuple(targets))
        plan = self._plans.get(key)
        if plan is None:
            feeds = {k: (v.shape, d) for k, (v, d) in resolved.items()}
            plan = Planner(self, self.device).build(self.graph, feeds, targets)
            self._plans[key] = plan
            while len(self._plans) > self.MAX_PLANS:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weights uploaded to the device."""
        return sum(b.nbytes for b in self._buffers.values())

    # -- weights ----------------------------------------------------------------------------
    def weight_buffer(self, key: str, value: np.ndarray, dtype: str) -> Buf:
        """The device buffer of weight ``key`` (``value`` as ``dtype``), uploaded on first use."""
        buf = self._buffers.get(key)
        if buf is None:
            up = Uploader(self.device)
            buf = self._upload(key, value, dtype, up)
            up.flush()
        return buf

    def _upload(self, key, value, dtype, up) -> Buf:
        arr = to_device_array(value, dtype)
        buf = Buf(arr.nbytes, "weight", key=key, label=key)
        buf.gpu = up(arr, key)
        self._buffers[key] = buf
        return buf

    def _preload_weights(self) -> None:
        """Upload, once, every weight some node reads as device data (not as an axis/shape)."""
        device_data = set()
        for node in self.graph.nodes.values():
            op = registry.get(node.op)
            if op is None or op.lower is None:
                continue
            srcs = self.graph.data_inputs(node)
            for pos, (src, _) in enumerate(srcs):
                if not op.is_host_input(pos, len(srcs)) and self.graph.nodes[src].op == "Const":
                    device_data.add(src)
        up = Uploader(self.device)
        for name in sorted(device_data):
            value = self.weights.get(name)
            if value is not None and value.dtype != object and name not in self._buffers:
                self._upload(name, value, dtype_of(value), up)
        up.flush()

    # -- names ------------------------------------------------------------------------------
    def _io_specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        sig = self.artifacts.signature
        if sig is not None and sig.inputs:
            # resource inputs (hash table handles) come from the model's initializer, not the user
            ins = [TensorSpec(s.name, s.dtype, s.shape) for s in sig.inputs.values() if s.dtype != "resource"]
            self._sig_inputs = {k: parse_ref(s.name)[0] for k, s in sig.inputs.items()}
        else:
            ins = [TensorSpec(n.name, n.attrs.get("dtype") or "float32",
                              n.attrs.get("shape")) for n in self.graph.placeholders]
            self._sig_inputs = {}
        if sig is not None and sig.outputs:
            outs = [TensorSpec(s.name, s.dtype, s.shape) for s in sig.outputs.values()]
            self._sig_outputs = {k: s.name for k, s in sig.outputs.items()}
        else:
            outs = [TensorSpec(n, "float32", None) for n in self.graph.default_outputs()]
            self._sig_outputs = {}
        return ins, outs

    def _resolve_input(self, name: str) -> str:
        node = self._sig_inputs.get(name)
        if node is None:
            ref = parse_ref(name)
            node = ref[0] if ref else None
        if node is None or node not in self.graph.nodes or self.graph.nodes[node].op != "Placeholder":
            known = sorted(set(self._sig_inputs) | {s.name for s in self.inputs})
            raise InputError(f"unknown input {name!r}; the model's inputs are: {', '.join(known)}")
        return node

    def _resolve_output(self, name: str) -> tuple[str, int]:
        tensor = self._sig_outputs.get(name, name)
        ref = parse_ref(tensor)
        if ref is None or ref[0] not in self.graph.nodes:
            known = sorted(set(self._sig_outputs) | {s.name for s in self.outputs})
            raise InputError(f"unknown output {name!r}; the model's outputs are: {', '.join(known)}")
        return ref

    def _check_feeds(self, feeds: Feeds) -> dict[str, tuple[np.ndarray, str]]:
        resolved: dict[str, tuple[np.ndarray, str]] = {}
        for name, value in feeds.items():
            node_name = self._resolve_input(name)
            node = self.graph.nodes[node_name]
            want = device_dtype(node.attrs.get("dtype") or "float32")
            arr = np.asarray(value)
            if want == STRING and dtype_of(arr) == STRING:     # host-only (the dynamic executor)
                arr = arr.astype(object)
            elif not feedable(want, arr.dtype):
                raise InputError(f"input {name!r} must be {want}, got an array of {arr.dtype}")
            shape = node.attrs.get("shape")
            if shape is not None and (len(shape) != arr.ndim or any(
                    d >= 0 and d != a for d, a in zip(shape, arr.shape))):
                raise InputError(f"input {name!r} must have shape {_fmt_shape(shape)}, got {tuple(arr.shape)}")
            resolved[node_name] = (arr if want == STRING else to_device_array(arr, want), want)
        for spec in self.inputs:
            node_name = self._resolve_input(spec.name)
            if node_name not in resolved:
                raise InputError(f"missing input {spec.name!r}")
        return resolved


def _fmt_shape(shape) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


def load_graph_model(path: str | os.PathLike[str], adapter: str | None = None) -> GraphModel:
    """Load a TF.js graph model (model.json file or its folder) onto ``adapter``."""
    artifacts = load_artifacts(path)
    if artifacts.format != "graph-model":
        raise InputError(f"{artifacts.path} is a {artifacts.format}; use load_layers_model")
    return GraphModel(artifacts, get_device(adapter))
