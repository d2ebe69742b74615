"""GraphModel: a frozen TF.js graph model on a WebGPU device (numpy in, numpy out)."""
from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Union

import numpy as np
import numpy.typing as npt

from ..device import Device, get_device
from ..dtypes import STRING, device_dtype, dtype_of, feedable, to_device_array
from ..errors import BindingLimitError, DisposedError, GraphError, InputError, ModelFormatError, TensorError, UnsupportedOpError
from ..format import ModelArtifacts, TensorSpec, load_artifacts
from .. import precision as precision_rule, textures
from ..memory import Buf, Uploader
from ..ops import registry, tiled
from ..tensor import Tensor
from ..textures import Tex
from . import batching, chunking, executor, optimize as graph_optimize
from . import profile as profiling
from .graph import Graph, parse_ref
from .dynamic import DynamicExecutor, function_nodes, needs_dynamic
from .plan import DataDependentError, Plan, build_plan
from .profile import Profile


Feeds = Mapping[str, Union[npt.ArrayLike, Tensor]]   # input name (signature key, tensor or node name) -> array
OutputNames = Union[str, Sequence[str], None]   # one name, several, or None: every output


class GraphModel:
    """A TF.js graph model on one WebGPU device (``load_graph_model``). ``inputs`` / ``outputs``:
    its TensorSpecs (signature order); ``predict`` and ``execute`` take numpy arrays or device
    Tensors and return numpy arrays (Tensors with ``on_device=True``); ``predict_async`` /
    ``execute_async`` are their coroutines; ``dispose()`` frees the model's device memory."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    DEFAULT_PLAN_CACHE = 8   # plans kept per model (one per distinct set of input shapes / outputs)

    def __init__(self, artifacts: ModelArtifacts, device: Device, plan_cache_size: int | None = None,
                 optimize: bool | None = None, precision: str = "float32"):
        """``plan_cache_size``: plans kept (default: env ``WGPU_RUNTIME_PLAN_CACHE``, else 8).
        ``optimize``: run the load-time graph optimizer (graph/optimize; default: on unless env
        ``WGPU_RUNTIME_OPTIMIZE=0``). ``precision``: "float32", or "float16" for f16 arithmetic
        in the matmuls and convolutions where the adapter has ``shader-f16`` (precision.py)."""
        self.precision = precision_rule.check(precision, device)
        self.artifacts = artifacts
        self.device = device
        # outputs of a model without a signature: the file's unconsumed nodes, not the rewritten graph's
        self._default_outputs = Graph(artifacts.nodes).default_outputs()
        nodes, self.weights = artifacts.nodes, artifacts.weights
        if graph_optimize.enabled(optimize):
            keep = [parse_ref(s.name)[0] for s in (artifacts.signature.outputs.values() if artifacts.signature else [])
                    if parse_ref(s.name)]
            nodes, self.weights = graph_optimize.apply(nodes, self.weights, keep)
        self.graph = Graph(nodes)
        missing = registry.missing_ops(n for n in [*artifacts.nodes, *function_nodes(artifacts)]
                                       if n.op not in ("Placeholder", "Const", "_Arg"))
        if missing:
            raise UnsupportedOpError(missing)
        self._buffers: dict[str, Buf] = {}
        self._textures: dict[str, Tex] = {}     # weight textures (textures.py), by key
        self._uploader = Uploader(device)       # weights derived while planning (repacked, placeholders)
        self._plans: OrderedDict[tuple, Plan] = OrderedDict()
        self.plan_cache_size = _plan_cache_size(plan_cache_size)
        self._too_big: OrderedDict[tuple, BindingLimitError] = OrderedDict()   # plan keys over the binding limit
        self._chunk_rows: dict[tuple, object] = {}    # chunking.prepare's decisions
        self.inputs, self.outputs = self._io_specs()
        self._input_keys = {}
        self._disposed = False
        self.structured_output_keys = _structured_output_keys(artifacts)
        self._preload_weights()
        self._dynamic = DynamicExecutor(self) if needs_dynamic(self.graph, artifacts) else None
        self._batcher: batching.Batcher | None = None

    # -- public API -------------------------------------------------------------------------
    def predict(self, x: npt.ArrayLike | Tensor | Sequence[npt.ArrayLike | Tensor] | Feeds,
                on_device: bool = False) -> np.ndarray | list[np.ndarray] | dict[str, np.ndarray] | Tensor | list[Tensor]:
        """x: one array (or Tensor), a list (in ``inputs`` order) or a dict by input name. One
        output: an array; several: a list in ``outputs`` order; a dict by key when the model
        declares ``userDefinedMetadata.structuredOutputKeys`` (as TF.js's predict).
        ``on_device``: Tensors the caller owns instead of arrays (no read-back)."""
        return self._predict_result(self.execute(self._predict_feeds(x), [s.name for s in self.outputs], on_device))

    async def predict_async(self, x: npt.ArrayLike | Tensor | Sequence[npt.ArrayLike | Tensor] | Feeds,
                            on_device: bool = False):
        """``predict`` as a coroutine: the GPU work is submitted at once and the outputs awaited
        (several calls in flight overlap encoding and read-back with GPU work)."""
        outs = await self.execute_async(self._predict_feeds(x), [s.name for s in self.outputs], on_device)
        return self._predict_result(outs)

    def _predict_result(self, outs):
        if self.structured_output_keys is not None:
            return dict(zip(self.structured_output_keys, outs))
        return outs[0] if len(outs) == 1 else outs

    def _predict_feeds(self, x) -> Feeds:
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
        return feeds

    def execute(self, feeds: Feeds, outputs: OutputNames = None, on_device: bool = False):
        """feeds: {input name (signature key, tensor name or node name): array or Tensor}.
        outputs: a name or a list of names (signature keys or tensor names 'node:i'); default:
        all outputs. Returns an array (one name) or a list; Tensors with ``on_device``."""
        batched = self._offer(feeds, outputs, on_device)
        result = batched.result() if batched is not None else batching.RUN_ALONE
        if result is batching.RUN_ALONE:
            with self.device.lock:      # held while planning and submitting, not while waiting (Device.lock)
                sub, result = self._submit(feeds, outputs, on_device)
            if sub is not None:
                result = executor.wait(self.device, sub)
        return result[0] if isinstance(outputs, str) else result

    async def execute_async(self, feeds: Feeds, outputs: OutputNames = None, on_device: bool = False):
        """``execute`` as a coroutine: submits at once, then awaits the read-back (wgpu's
        map_async) without holding the device. Cancelling it leaves the model usable."""
        batched = self._offer(feeds, outputs, on_device)
        if batched is not None:
            result = await asyncio.wrap_future(batched)
            if result is not batching.RUN_ALONE:
                return result[0] if isinstance(outputs, str) else result
        if self._dynamic is not None:       # node by node, with host steps: in a worker thread
            return await asyncio.to_thread(self.execute, feeds, outputs, on_device)

        def submit():       # in a worker thread: a submit may block until earlier GPU work is done (lavapipe)
            with self.device.lock:
                return self._submit(feeds, outputs, on_device, request_map=False)
        fut = asyncio.get_running_loop().run_in_executor(None, submit)
        try:
            sub, result = await asyncio.shield(fut)
        except asyncio.CancelledError:      # the submit still completes: its staging buffer goes back
            fut.add_done_callback(lambda f: f.cancelled() or f.exception() or executor.release(self.device, f.result()[0]))
            raise
        if sub is not None:
            result = await executor.wait_async(self.device, sub)
        return result[0] if isinstance(outputs, str) else result

    def enable_dynamic_batching(self, max_batch_size: int = 8, max_delay_ms: float = 1.0) -> None:
        """Stack concurrent calls (threads or coroutines, numpy inputs) into batches of up to
        ``max_batch_size`` rows, waiting at most ``max_delay_ms`` after the oldest queued call
        for more (graph/batching.py). GraphError when the model is not batch-separable (an op
        mixes rows, or the batch dimension is fixed). Calls that cannot be batched run alone."""
        self._check_alive()
        batcher = batching.Batcher(self, max_batch_size, max_delay_ms)
        self.disable_dynamic_batching()
        self._batcher = batcher

    def disable_dynamic_batching(self) -> None:
        """Every call runs alone again (calls already queued still run)."""
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.drain()

    @property
    def dynamic_batching(self) -> dict | None:
        """None, or the batcher's settings and counts (calls, batches, batched_calls, alone)."""
        b = self._batcher
        return None if b is None else {"max_batch_size": b.max_batch_size, "max_delay_ms": b.max_delay_ms, **b.stats}

    def _offer(self, feeds: Feeds, outputs: OutputNames, on_device: bool):
        batcher = self._batcher
        if batcher is None or on_device:
            return None
        self._check_alive()
        return batcher.offer(feeds, outputs)

    def _submit(self, feeds: Feeds, outputs: OutputNames, on_device: bool, request_map: bool = True):
        """Under Device.lock: (submitted static-plan inference, None) or (None, the outputs of
        the dynamic executor or of a chunked run)."""
        self._check_alive()
        resolved, targets = self._check_feeds(feeds), self._targets(outputs)
        if self._dynamic is None:
            try:
                return self._submit_checked(resolved, targets, on_device, request_map)
            except DataDependentError:      # a host op on data / a data-dependent shape
                self._dynamic = DynamicExecutor(self)
        resolved = {k: (to_device_array(v.numpy(), d) if isinstance(v, Tensor) else v, d)
                    for k, (v, d) in resolved.items()}
        result = self._dynamic.run(resolved, targets)
        if on_device:
            result = [Tensor.from_numpy(r, self.device) for r in result]
        return None, result

    def _submit_checked(self, resolved, targets, on_device: bool = False, request_map: bool = True):
        """Under Device.lock, checked inputs (``_check_feeds``) and output refs: (submitted
        inference, None), or (None, the outputs) of a batch over the binding limit run in chunks.
        DataDependentError when the graph needs the dynamic executor."""
        try:
            plan = self._plan_checked(resolved, targets)
        except BindingLimitError as e:      # a tensor over the binding limit: the batch in chunks
            return None, chunking.run(self, None, None, e, on_device)
        arrays = {k: v for k, (v, _) in resolved.items()}
        return executor.submit(self.device, plan, arrays, on_device, request_map=request_map), None

    def dispose(self) -> None:
        """Free the weights, plans (their buffers and bind groups) and pipelines' references now;
        using the model afterwards raises DisposedError. Calls in flight finish first."""
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()
        with self.device.lock:
            if self._disposed:
                return
            self._disposed = True
            self.device.wait_idle()
            gone = {id(b.gpu): b.gpu for b in [*self._buffers.values(), *self._textures.values()] if b.gpu is not None}
            for plan in self._plans.values():
                plan.ahead.clear()      # command buffers binding what is destroyed below: never submitted
                for step in plan.steps:
                    gone.update((id(b.gpu), b.gpu) for b in step.bindings if b.gpu is not None)
                    gone.update((id(b.scratch.gpu), b.scratch.gpu) for b in step.bindings
                                if isinstance(b, Tex) and b.scratch is not None and b.scratch.gpu is not None)
                    if step.uniform is not None:
                        gone[id(step.uniform)] = step.uniform
                    step.bind_group = step.pipeline = None
                gone.update((id(b.gpu), b.gpu) for b in plan.inputs.values() if b.gpu is not None)
                gone.update((id(b), b) for b in plan.staging_ring)
                plan.staging_ring.clear()
            for buf in gone.values():
                buf.destroy()
            self._plans.clear()
            self._buffers.clear()
            self._textures.clear()
            self._dynamic = None

    @property
    def disposed(self) -> bool:
        """Whether ``dispose()`` was called."""
        return self._disposed

    def _check_alive(self) -> None:
        if self._disposed:
            raise DisposedError("this model has been disposed")

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
        self._check_alive()
        resolved, targets = self._check_feeds(feeds), self._targets(outputs)
        return self._plan_checked(resolved, targets), {k: v for k, (v, _) in resolved.items()}

    def _targets(self, outputs: OutputNames) -> list[tuple[str, int]]:
        """The (node, output index) refs of an ``execute`` call's output names (default: all)."""
        names = [outputs] if isinstance(outputs, str) else list(outputs or [s.name for s in self.outputs])
        return [self._resolve_output(n) for n in names]

    def _plan_checked(self, resolved, targets) -> Plan:
        try:
            return self._plan(resolved, targets)
        except BindingLimitError as e:
            e.request = (resolved, targets)     # checked once: graph/chunking.py runs them in chunks
            raise

    def _plan(self, resolved, targets) -> Plan:
        key = (tuple(sorted((k, v.shape, d) for k, (v, d) in resolved.items())), tuple(targets))
        plan = self._plans.get(key)
        if plan is None:
            if key in self._too_big:        # known to fail: no partial planning again
                e = self._too_big[key]
                raise BindingLimitError(e.nbytes, e.limit, e.node)
            feeds = {k: (v.shape, d) for k, (v, d) in resolved.items()}
            try:
                plan = build_plan(self, self.graph, feeds, targets)
            except BindingLimitError as e:
                self._too_big[key] = e
                while len(self._too_big) > self.plan_cache_size:
                    self._too_big.popitem(last=False)
                raise
            self._plans[key] = plan
            while len(self._plans) > self.plan_cache_size:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    def profile(self, feeds, outputs: OutputNames = None, warmup: bool = True) -> Profile:
        """Profile one ``execute(feeds, outputs)`` (``feeds`` may also be ``predict``'s x): GPU
        time per node (timestamp queries, where the adapter has them) and host time per phase;
        ``.table()``, ``.to_dict()``, ``.save_trace(path)`` (Chrome trace / Perfetto).
        ``warmup``: one unrecorded run first. See graph/profile.py."""
        self._check_alive()
        return profiling.profile(self, feeds, outputs, warmup)

    def memory_info(self) -> dict:
        """Device bytes this model holds: weights, each cached plan's activations (liveness-pooled
        temps), inputs, constants and staging buffers, and the peak (graph/profile.py)."""
        return profiling.memory_info(self)

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weights uploaded to the device (buffers and textures)."""
        return sum(b.nbytes for b in [*self._buffers.values(), *self._textures.values()])

    # -- weights ----------------------------------------------------------------------------
    def weight_buffer(self, key: str, value: np.ndarray, dtype: str) -> Buf:
        """The device buffer of weight ``key`` (``value`` as ``dtype``), uploaded on first use."""
        buf = self._buffers.get(key)
        if buf is None:     # no submit of its own: the model's uploader submits every ~64 MB, and
            #                 every submit that may bind the weight comes after its write
            buf = self._upload(key, value, dtype, self._uploader)
        return buf

    def weight_texture(self, key: str, matrix: np.ndarray) -> Tex:
        """The texture of float32 [rows, cols] matrix ``key`` (a repacked weight), uploaded on
        first use (textures.texels_of)."""
        tex = self._textures.get(key)
        if tex is None:
            tex = self._textures[key] = textures.weight_texture(self.device, key, matrix)
        return tex

    def _upload(self, key, value, dtype, up) -> Buf:
        arr = to_device_array(value, dtype)
        buf = Buf(arr.nbytes, "weight", key=key, label=key)
        buf.gpu = up(arr, key)
        self._buffers[key] = buf
        return buf

    def _output_nodes(self) -> list:
        """The nodes the model's outputs need; every node when an output does not resolve."""
        targets = [parse_ref(s.name) for s in self.outputs]
        if not targets or any(t is None or t[0] not in self.graph.nodes for t in targets):
            return list(self.graph.nodes.values())
        return self.graph.order(list(dict.fromkeys(t[0] for t in targets)))

    def _preload_weights(self) -> None:
        """Upload, once, every weight a node computing the model's outputs reads as device data
        (not as an axis/shape). Nodes the optimizer left unread (still there to be asked for by
        name) get theirs on first use (:meth:`weight_buffer`), as do weights that an op's texture
        variant reads as its own texture where that variant comes first (OpDef.texture_inputs: a
        matmul's B on software adapters; a plan that picks another variant uploads the buffer)."""
        device_data = set()
        textures_first = tiled.texture_first(self.device)
        for node in self._output_nodes():
            op = registry.get(node.op)
            if op is None or op.lower is None:
                continue
            srcs = self.graph.data_inputs(node)
            for pos, (src, _) in enumerate(srcs):
                if textures_first and pos in op.texture_inputs:
                    continue
                if not op.is_host_input(pos, len(srcs), node.attrs) and self.graph.nodes[src].op == "Const":
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
            self._sig_inputs = {k: (parse_ref(s.name) or ("",))[0] for k, s in sig.inputs.items()}
        else:
            ins = [TensorSpec(n.name, n.attrs.get("dtype") or "float32",
                              n.attrs.get("shape")) for n in self.graph.placeholders]
            self._sig_inputs = {}
        if sig is not None and sig.outputs:
            outs = [TensorSpec(s.name, s.dtype, s.shape) for s in sig.outputs.values()]
            self._sig_outputs = {k: s.name for k, s in sig.outputs.items()}
        else:
            outs = [TensorSpec(n, "float32", None) for n in self._default_outputs]
            self._sig_outputs = {}
        return ins, outs

    def _resolve_input(self, name: str) -> str:
        node = self._placeholder_of(name)
        if node is None and (name in self._sig_inputs or any(s.name == name for s in self.inputs)):
            raise InputError(f"the model's input {name!r} names no Placeholder of the graph")
        if node is None:
            known = sorted(n for n in set(self._sig_inputs) | {s.name for s in self.inputs} if self._placeholder_of(n))
            raise InputError(f"unknown input {name!r}; the model's inputs are: "
                             f"{', '.join(known) or '(none names a Placeholder of the graph)'}")
        return node

    def _placeholder_of(self, name) -> str | None:
        """The Placeholder node an input name (signature key, tensor ``x:0`` or node name) feeds."""
        node = self._sig_inputs.get(name)
        if node is None and isinstance(name, str):
            ref = parse_ref(name)
            node = ref[0] if ref is not None and ref[1] == 0 else None
        return node if node in self.graph.nodes and self.graph.nodes[node].op == "Placeholder" else None

    def _resolve_output(self, name: str) -> tuple[str, int]:
        tensor = self._sig_outputs.get(name, name)
        ref = self._output_ref(tensor)
        if ref is None and (name in self._sig_outputs or any(s.name == name for s in self.outputs)):
            key = name if name in self._sig_outputs else next(
                (k for k, t in self._sig_outputs.items() if t == name), name)
            if not tensor:
                raise ModelFormatError(f"the model's output {key!r} names no tensor")
            raise ModelFormatError(f"the model's output {key!r} is tensor {tensor!r}, which no node of the graph produces")
        if ref is None:
            known = sorted(n for n in set(self._sig_outputs) | {s.name for s in self.outputs}
                           if self._output_ref(self._sig_outputs.get(n, n)) is not None)
            raise InputError(f"unknown output {name!r}; the model's outputs are: {', '.join(known) or '(none is produced by a node of the graph)'}")
        return ref

    def _output_ref(self, tensor: str) -> tuple[str, int] | None:
        ref = parse_ref(tensor) if tensor else None
        return ref if ref is not None and ref[0] in self.graph.nodes else None

    def _check_feeds(self, feeds: Feeds) -> dict[str, tuple[np.ndarray, str]]:
        resolved: dict[str, tuple[np.ndarray, str]] = {}
        for name, value in feeds.items():
            node_name = self._resolve_input(name)
            node = self.graph.nodes[node_name]
            want = device_dtype(node.attrs.get("dtype") or "float32")
            if isinstance(value, Tensor):
                resolved[node_name] = (self._check_tensor(name, value, want, node.attrs.get("shape")), want)
                continue
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
            node_name = self._placeholder_of(spec.name)
            if node_name is None:
                raise InputError(f"the model's input {spec.name!r} names no Placeholder of the graph")
            if node_name not in resolved:
                raise InputError(f"missing input {spec.name!r}")
        return resolved

    def _check_tensor(self, name: str, t: Tensor, want: str, shape) -> Tensor:
        t.buffer                                    # DisposedError for a disposed tensor
        if t.device.device is not self.device.device:
            raise TensorError(f"input {name!r} is a tensor on another device ({t.device.name}); "
                              f"the model runs on {self.device.name}")
        if t.dtype != want:
            raise InputError(f"input {name!r} must be {want}, got a {t.dtype} device tensor")
        if shape is not None and (len(shape) != len(t.shape) or any(
                d >= 0 and d != a for d, a in zip(shape, t.shape))):
            raise InputError(f"input {name!r} must have shape {_fmt_shape(shape)}, got a device tensor of shape {t.shape}")
        return t


def _plan_cache_size(value: int | None) -> int:
    if value is None:
        env = os.environ.get("WGPU_RUNTIME_PLAN_CACHE", "").strip()
        if not env:
            return GraphModel.DEFAULT_PLAN_CACHE
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"WGPU_RUNTIME_PLAN_CACHE must be an integer >= 1, got {env!r}")
        return int(env)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"plan_cache_size must be an integer >= 1, got {value!r}")
    return value


def _fmt_shape(shape) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


def _structured_output_keys(artifacts: ModelArtifacts) -> list[str] | None:
    keys = (artifacts.user_defined_metadata or {}).get("structuredOutputKeys")
    if keys is not None and (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)):
        raise ModelFormatError(f"{artifacts.path}: userDefinedMetadata.structuredOutputKeys must be a list of strings")
    return keys


def load_graph_model(path: str | os.PathLike[str], adapter: str | None = None, device=None,
                     plan_cache_size: int | None = None, optimize: bool | None = None,
                     precision: str = "float32") -> GraphModel:
    """Load a TF.js graph model (model.json file or its folder) onto ``adapter`` (a query
    string), or onto ``device``: a Device or a ``wgpu.GPUDevice`` the caller opened.
    ``plan_cache_size``: plans kept (default: env ``WGPU_RUNTIME_PLAN_CACHE``, else 8).
    ``optimize``: the load-time graph optimizer (default: on unless env ``WGPU_RUNTIME_OPTIMIZE=0``).
    ``precision``: "float32" (default) or "float16" (f16 arithmetic in the matmuls and
    convolutions; the adapter needs ``shader-f16``: wgpu_runtime/precision.py)."""
    artifacts = load_artifacts(path)
    if artifacts.format != "graph-model":
        raise InputError(f"{artifacts.path} is a {artifacts.format}; use load_layers_model")
    return GraphModel(artifacts, get_device(device if device is not None else adapter), plan_cache_size,
                      optimize=optimize, precision=precision)
