"""LayersModel: a Keras / TF.js layers model -- inference on the GPU, training on the CPU autograd,
saving back to the TF.js layers format. Names and behaviour follow Keras' Model and TF.js'
tf.LayersModel."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, Union

import numpy as np

from ..device import get_device
from ..dtypes import layer_input_dtype, numpy_dtype
from ..errors import InputError, ModelFormatError
from ..format import load_artifacts
from .base import Layer, Weight
from .ctx import EagerCtx
from .functional import Functional, InputLayer
from .gpu import TRACE_BATCH, LayersGraphModel, trace
from .topology import parse

if TYPE_CHECKING:
    from ..callbacks import History
    from ..optimizers import Optimizer

# numpy in, numpy out: one array, a list (in input order) or a dict by input name
ArrayInputs = Union[np.ndarray, Sequence[np.ndarray], dict, None]
ArrayOutputs = Union[np.ndarray, list]
Verbose = Union[str, int]

PREDICT_ROWS = 1024      # rows per GPU run in predict() when no batch_size is given


def steps_for(rows: int, batch_size: int | None) -> int:
    """GPU runs for ``rows`` samples in runs of ``batch_size`` (default PREDICT_ROWS) rows."""
    return max(1, -(-rows // (batch_size or PREDICT_ROWS)))


def flavor_of(topology: dict, keras3_config: bool) -> str:
    version = str(topology.get("keras_version") or "")
    backend = str(topology.get("backend") or "")
    if version.startswith("tfjs") or "tensor_flow.js" in backend:
        return "tfjs"
    if version.startswith("3") or keras3_config:
        return "keras3"
    return "tf_keras"


class LayersModel:
    """A layers model. Build it with :func:`load_layers_model`."""

    def __init__(self, net: Functional, topology_json: dict, adapter=None, artifacts_meta: dict | None = None):
        self.net = net
        self.name = net.name
        self.topology_json = topology_json
        self.adapter = adapter
        self.meta = artifacts_meta or {}
        self.optimizer = None
        self.compiled = None
        self.stop_training = False
        self.history = None
        self._gpu: dict[tuple, tuple] = {}       # input shapes (no batch) -> (LayersGraphModel, Traced)
        self._dirty = False
        self._rng = np.random.default_rng()
        self.saved_order: list[Weight] = []      # weights in the order they were loaded (saving order)

    # -- keras-like structure ------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """Top-level layers (a Sequential model's list leaves its InputLayer out, as Keras)."""
        if self._is_sequential:
            return [l for l in self.net.layers if not isinstance(l, InputLayer)]
        return list(self.net.layers)

    _is_sequential = False

    @property
    def input_names(self) -> list[str]:
        """The input layers' names, in the model's input order."""
        return self.net.input_names

    @property
    def output_names(self) -> list[str]:
        """The output layers' names, in the model's output order."""
        return self.net.output_names

    @property
    def inputs(self) -> list[dict]:
        """Per input: ``{"name", "shape" (batch dim None), "dtype"}``."""
        return [{"name": l.name, "shape": l.batch_shape, "dtype": l.dtype} for l in self.net.input_layers]

    @property
    def outputs(self) -> list[dict]:
        """Per output: ``{"name", "shape"}`` (batch dim None; None when not known)."""
        shapes = [self.net.call_shapes.get((r.layer, r.node)) for r in self.net.topology.outputs]
        return [{"name": r.layer, "shape": (None, *s[r.tensor][1:]) if s else None}
                for r, s in zip(self.net.topology.outputs, shapes)]

    @property
    def trainable(self) -> bool:
        """Whether training updates the model's weights (Keras' ``model.trainable``; settable)."""
        return self.net.trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.net.trainable = value

    @property
    def weights(self) -> list[Weight]:
        """Every weight, trainable ones first per layer, as Keras lists them."""
        return self.net.weights

    @property
    def trainable_weights(self) -> list[Weight]:
        """The weights fit() updates."""
        return self.net.trainable_weights

    @property
    def non_trainable_weights(self) -> list[Weight]:
        """The weights fit() leaves to the layers (moving statistics, frozen layers)."""
        return self.net.non_trainable_weights

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name, or by index in :attr:`layers`; ValueError when there is none."""
        if index is not None:
            layers = self.layers
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"layer index {index} out of range: the model has {len(layers)} layers")
            return layers[index]
        for layer in self.net.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {', '.join(l.name for l in self.net.layers)}")

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight's value, in the order of :attr:`weights`."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, arrays: Sequence[np.ndarray]) -> None:
        """Assign every weight (arrays in the order of :attr:`weights`); the GPU copy follows."""
        ws = self.weights
        if len(arrays) != len(ws):
            raise ValueError(f"model has {len(ws)} weights, got {len(arrays)} arrays")
        for w, a in zip(ws, arrays):
            w.assign(a)
        self.mark_weights_changed()

    def count_params(self) -> int:
        """The number of scalars in all weights."""
        return self.net.count_params()

    def mark_weights_changed(self) -> None:
        """Host weights changed: the GPU copy is refreshed before the next GPU inference."""
        self._dirty = True

    # -- running -------------------------------------------------------------------------------
    def _feeds(self, x) -> list[np.ndarray]:
        names = self.input_names
        if isinstance(x, dict):
            missing = [n for n in names if n not in x]
            if missing:
                raise InputError(f"missing inputs {missing}; the model's inputs are {names}")
            xs = [x[n] for n in names]
        elif isinstance(x, (list, tuple)) and (len(names) > 1 or (len(x) == 1 and isinstance(x[0], np.ndarray))):
            xs = list(x)
        else:
            xs = [x]
        if len(xs) != len(names):
            raise InputError(f"model {self.name!r} has {len(names)} inputs ({', '.join(names)}), got {len(xs)} arrays")
        out = []
        for layer, a in zip(self.net.input_layers, xs):
            a = np.asarray(a)
            want = layer.batch_shape
            if a.ndim != len(want) or any(d is not None and d != s for d, s in zip(want[1:], a.shape[1:])):
                raise InputError(f"input {layer.name!r} must have shape {_fmt(want)}, got {a.shape}")
            if a.dtype.kind not in "biuf":
                raise InputError(f"input {layer.name!r} must hold numbers, got an array of {a.dtype}")
            out.append(a.astype(numpy_dtype(layer_input_dtype(layer.dtype)), copy=False))
        return out

    def __call__(self, x, training: bool = False):
        """Run on the CPU (numpy references), as Keras' ``model(x, training=...)``."""
        ctx = EagerCtx(training=training, rng=self._rng)
        out = self.net(ctx, *self._feeds(x))
        if isinstance(out, (list, tuple)):
            return [ctx.value(o) for o in out]
        return ctx.value(out)

    def gpu_model(self, xs) -> tuple:
        """The traced GPU graph for these inputs' non-batch shapes (weights refreshed first)."""
        key = tuple(a.shape[1:] for a in xs)
        entry = self._gpu.get(key)
        if entry is None:
            traced = trace(self.net, self.net.input_layers, key)
            gm = LayersGraphModel(traced.artifacts, get_device(self.adapter))
            entry = self._gpu[key] = (gm, traced)
        elif self._dirty:
            for gm, _ in self._gpu.values():
                gm.refresh()
        self._dirty = False
        return entry

    def run_gpu(self, xs, fetch: list[str] | None = None, batch_size: int | None = None,
                on_batch=None) -> list[np.ndarray]:
        """Every output (or the tensors ``fetch``) for inputs ``xs``, in runs of ``batch_size`` rows;
        ``on_batch(i)`` after run i (progress)."""
        with get_device(self.adapter).lock:     # tracing and weight refreshes too (Device.lock)
            gm, traced = self.gpu_model(xs)
        names = fetch or traced.outputs
        n = xs[0].shape[0]
        rows = batch_size or PREDICT_ROWS
        parts = []
        for i, start in enumerate(range(0, max(n, 1), rows)):
            feeds = {ph: a[start:start + rows] for ph, a in zip(traced.input_names, xs)}
            parts.append(gm.execute(feeds, list(names)))
            if on_batch is not None:
                on_batch(i)
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(names))]

    def predict(self, x: ArrayInputs, batch_size: int | None = None, verbose: Verbose = "auto") -> ArrayOutputs:
        """Inference on the GPU, in runs of ``batch_size`` rows (default PREDICT_ROWS). One output:
        an array; several: a list. ``verbose`` as Keras: "auto" (1), 0 silent, 1 progress bar
        (one line when stdout is not a terminal), 2 one line (layers/progress.py)."""
        from .progress import PassProgress

        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise InputError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        xs = self._feeds(x)
        progress = PassProgress(verbose, steps_for(xs[0].shape[0], batch_size))
        t0 = time.perf_counter()
        try:
            outs = self.run_gpu(xs, batch_size=batch_size, on_batch=progress.batch_end)
        except BaseException:
            progress.abort()
            raise
        progress.end(time.perf_counter() - t0)
        return outs[0] if len(outs) == 1 else outs

    def predict_on_batch(self, x: ArrayInputs) -> ArrayOutputs:
        """``predict`` on one batch, silently (Keras' ``predict_on_batch``)."""
        return self.predict(x, verbose=0)

    # -- training (wgpu_runtime.layers.training) -----------------------------------------------
    def compile(self, optimizer: str | Optimizer = "rmsprop", loss=None, metrics: list | dict | None = None,
                loss_weights: list | dict | None = None) -> None:
        """Keras' compile: an optimizer (name or instance), a loss per output or for all, metrics."""
        from .training import compile_model

        compile_model(self, optimizer, loss, metrics, loss_weights)

    def fit(self, x: ArrayInputs = None, y: ArrayInputs = None, batch_size: int = 32, epochs: int = 1,
            verbose: Verbose = "auto", callbacks: list | None = None, validation_split: float = 0.0,
            validation_data: tuple | None = None, shuffle: bool = True, initial_epoch: int = 0,
            seed: int | None = None, blas_threads: int | None = 1) -> History:
        """Keras' fit. ``seed`` fixes shuffling and dropout; ``blas_threads`` caps numpy's
        OpenBLAS threads while training (None: leave it as it is)."""
        from .training import fit

        return fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                   validation_split=validation_split, validation_data=validation_data, shuffle=shuffle,
                   initial_epoch=initial_epoch, seed=seed, blas_threads=blas_threads)

    def evaluate(self, x: ArrayInputs = None, y: ArrayInputs = None, batch_size: int | None = None,
                 verbose: Verbose = "auto", return_dict: bool = False, device: str = "gpu") -> float | list | dict:
        """Loss and metrics in inference mode. ``verbose`` as in :meth:`predict`."""
        from .training import evaluate

        logs = evaluate(self, x, y, batch_size=batch_size, device=device, verbose=verbose)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def train_on_batch(self, x: ArrayInputs, y: ArrayInputs, return_dict: bool = False) -> float | list | dict:
        """One optimizer step on one batch; the loss (and metrics) of that batch."""
        from ..autograd import blas
        from .training import check_targets, train_step

        with blas.limit(1):
            logs = train_step(self, self._feeds(x), check_targets(self, y))
        return logs if return_dict else (logs["loss"] if len(logs) == 1 else list(logs.values()))

    def test_on_batch(self, x: ArrayInputs, y: ArrayInputs, return_dict: bool = False) -> float | list | dict:
        """Loss and metrics on one batch in inference mode, silently."""
        return self.evaluate(x, y, return_dict=return_dict, verbose=0)

    # -- saving & describing -------------------------------------------------------------------
    def save(self, path: str | os.PathLike, overwrite: bool = True, shard_size: int | None = 4194304) -> Path:
        """model.json + weight shards (TF.js layers format; the topology as loaded, the current
        weights under their original names and order)."""
        from .saving import save

        return save(self, path, overwrite=overwrite, shard_size=shard_size)

    def summary(self, print_fn: Callable[[str], object] | None = None, line_length: int = 98) -> None:
        """Keras' summary table: layers, output shapes, parameter counts (``print_fn`` default: print)."""
        from .summary import summary

        summary(self, print_fn or print, line_length)

    def to_json(self) -> str:
        """The model's Keras config as JSON (Keras' ``to_json``)."""
        return json.dumps(self.topology_json.get("model_config", self.topology_json))


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


# ------------------------------------------------------------------------------------ loading
def _owner_paths(layer: Functional, prefix: tuple = ()) -> list[tuple[tuple, Layer]]:
    """(path, layer) for every layer owning weights; nested models are descended into."""
    out = []
    for sub in layer.sublayers:
        path = prefix + (sub.name,)
        if isinstance(sub, Functional):
            out += _owner_paths(sub, path)
        elif sub.weights:
            out.append((path, sub))
    return out


def bind_weights(net: Functional, weights: dict, order: list[str]) -> list[Weight]:
    """Give every layer its weights from the manifest. A manifest name belongs to the layer whose
    name (or nested-model path: Keras 3 writes "inner/dense/kernel", tf_keras "dense/kernel")
    starts it; a layer's names are taken in manifest order, which is the order Keras writes them,
    and must match its weights in number and shape. Returns the weights in manifest order."""
    owners = _owner_paths(net)
    owners += [((net.name, *path), layer) for path, layer in owners]   # Keras 3 Sequential: "model/dense/kernel"
    assigned: dict[int, list[str]] = {id(l): [] for _, l in owners}
    unmatched = []
    for name in order:
        parts = tuple(name.split("/"))
        best, score = None, 0
        for path, layer in owners:
            for i in range(len(path)):   # the longest matching tail of the layer's path wins
                suffix = path[i:]
                if parts[:len(suffix)] == suffix and len(suffix) > score:
                    best, score = layer, len(suffix)
                    break
        if best is None:
            unmatched.append(name)
        else:
            assigned[id(best)].append(name)
    if unmatched:
        raise ModelFormatError(f"weights {', '.join(unmatched[:6])} belong to no layer of the model")
    saved = []
    owners = list({id(l): (p, l) for p, l in reversed(owners)}.values())
    for _, layer in owners:
        names = assigned[id(layer)]
        ws = layer.weights
        if len(names) != len(ws):
            raise ModelFormatError(f"layer {layer.name!r} ({layer.class_name}) has {len(ws)} weights "
                                   f"({', '.join(w.name for w in ws)}), the file has {len(names)} for it "
                                   f"({', '.join(names) or 'none'})")
        for w, name in zip(ws, names):
            value = np.asarray(weights[name])
            if value.shape != w.value.shape:
                raise ModelFormatError(f"weight {name!r} has shape {value.shape}, layer {layer.name!r} "
                                       f"({layer.class_name}) expects {w.value.shape} for {w.name}")
            w.value[...] = value.astype(np.float32)
            w.key = name
    by_key = {w.key: w for _, l in owners for w in l.weights}
    for name in order:
        saved.append(by_key[name])
    return saved


def model_from_topology(topology: dict, adapter=None) -> LayersModel:
    """A LayersModel with zero weights from a modelTopology (converter) or Keras model config."""
    model_config = topology.get("model_config") if "model_config" in topology else topology
    if not isinstance(model_config, dict) or "class_name" not in model_config:
        raise ModelFormatError("modelTopology has no model_config with a class_name")
    topo = parse(model_config)
    flavor = flavor_of(topology, topo.keras3)
    net = Functional(topology=topo, flavor=flavor, class_name=model_config["class_name"])
    model = LayersModel(net, topology, adapter)
    model._is_sequential = model_config["class_name"] == "Sequential"
    ctx = EagerCtx(training=False)
    net(ctx, *net.example_inputs(TRACE_BATCH))          # builds every layer (declares weights)
    return model


def load_layers_model(path: str | os.PathLike, adapter: str | None = None, device=None) -> LayersModel:
    """Load a TF.js layers model (model.json file or its folder): the official converter's output
    from tf_keras / Keras 2 / Keras 3 models, or a model TF.js saved. ``adapter`` picks the GPU
    for inference ("vulkan", "gl", any substring; default: wgpu's choice); ``device``: a Device
    or a ``wgpu.GPUDevice`` the caller opened, instead."""
    art = load_artifacts(path)
    if art.format != "layers-model":
        raise InputError(f"{art.path} is a {art.format}; use load_graph_model")
    model = model_from_topology(art.model_topology, device if device is not None else adapter)
    order = [spec["name"] for spec in art.weight_specs]
    model.saved_order = bind_weights(model.net, art.weights, order)
    model.meta = {"generatedBy": art.generated_by, "userDefinedMetadata": art.user_defined_metadata,
                  "path": str(art.path)}
    return model
