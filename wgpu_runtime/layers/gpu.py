"""A layers model on the GPU: its layers traced once into a graph of registry ops, planned and run
by :mod:`wgpu_runtime.graph` like any graph model.

Weights are uploaded once. Training changes them on the host; :meth:`LayersGraphModel.refresh`
then rewrites the changed weight buffers in place with ``queue.write_buffer`` (bind groups stay
valid), and constants the planner derived from weights (repacked filters, batch-norm scales
folded on the host) are recomputed by replanning, their buffers rewritten in place too. No
reload, no new weight buffers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dtypes import dtype_of, layer_input_dtype, numpy_dtype, to_device_array
from ..format import ModelArtifacts, Signature, TensorSpec
from ..graph.model import GraphModel
from .ctx import GraphCtx, Sym
from .fusion import fuse

TRACE_BATCH = 2       # stand-in batch size while tracing (not 1: it would hide broadcasting slips)
_FINAL_OPS = ("Softmax", "Sigmoid")
FUSE = True           # MatMul/Conv + BiasAdd + activation -> one fused op (layers/fusion.py)


@dataclass
class Traced:
    artifacts: ModelArtifacts
    input_names: list[str]            # placeholder per model input, in order
    outputs: list[str]                # tensor names of the model outputs
    logits: list[tuple[str, str] | None]   # per output: (op, tensor name of its input) when it ends in Softmax/Sigmoid
    graph_weights: dict[str, object]  # Const node -> the live host array it reads


def trace(net, inputs_spec, example_shapes) -> Traced:
    """Record ``net`` (a Functional) in inference mode. ``inputs_spec``: InputLayers;
    ``example_shapes``: per input, the non-batch dims to trace with."""
    ctx = GraphCtx()
    args = []
    for layer, dims in zip(inputs_spec, example_shapes):
        dtype = layer_input_dtype(layer.dtype)
        example = np.zeros((TRACE_BATCH, *dims), numpy_dtype(dtype))
        args.append(ctx.placeholder(layer.name, (-1, *dims), dtype, example))
    out = net(ctx, *args)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    producers = {n.name: n for n in ctx.nodes}
    names, logits = [], []
    for o in outs:
        if not isinstance(o, Sym):
            o = ctx.constant(o)
        names.append(o.ref if ":" in o.ref else f"{o.ref}:0")
        node = producers.get(o.ref.split(":")[0])
        if node is not None and node.op in _FINAL_OPS and ":" not in o.ref:
            src = node.inputs[0]
            logits.append((node.op, src if ":" in src else f"{src}:0"))
        else:
            logits.append(None)
    sig_in = {a.ref: TensorSpec(f"{a.ref}:0", n.attrs["dtype"], n.attrs["shape"])
              for a, n in zip(args, [producers[a.ref] for a in args])}
    fetchable = names + [lg[1] for lg in logits if lg is not None]
    nodes = fuse(ctx.nodes, fetchable, ctx.weights) if FUSE else ctx.nodes
    sig_out = {f"output_{i}": TensorSpec(name, "float32", None) for i, name in enumerate(names)}
    art = ModelArtifacts(path=Path(f"<layers model {net.name}>"), format="graph-model", generated_by=None,
                         converted_by=None, model_topology={}, nodes=nodes, functions=[],
                         signature=Signature(sig_in, sig_out), weights=ctx.weights, weight_specs=[],
                         user_defined_metadata=None, model_initializer=None, initializer_signature=None)
    return Traced(art, [a.ref for a in args], names, logits, ctx.weights)


class LayersGraphModel(GraphModel):
    """GraphModel whose weight buffers follow host arrays that training updates."""

    def __init__(self, artifacts, device):
        self._stale: set[str] = set()
        # no load-time optimizer: its derived weights would not follow training (layers/fusion.py fuses)
        super().__init__(artifacts, device, optimize=False)

    def refresh(self) -> None:
        """Rewrite every weight buffer from its host array; replan what was derived from them
        (derived buffers are rewritten when the new plan asks for them, weight textures made anew)."""
        for key, buf in self._buffers.items():
            value = self.weights.get(key)
            if value is not None and key not in self._stale:
                arr = to_device_array(value, dtype_of(value))
                if arr.nbytes:
                    self.device.queue.write_buffer(buf.gpu, 0, memoryview(arr).cast("B"))
        derived = [k for k in self._buffers if k not in self.weights]
        self._stale.update(derived)
        had_textures = bool(self._textures)  # weight textures are derived (packed filters): made anew
        self._textures.clear()
        if derived or had_textures or any(p.const_bytes for p in self._plans.values()):
            self._plans.clear()

    def weight_buffer(self, key, value, dtype):
        buf = self._buffers.get(key)
        if buf is not None and key in self._stale:
            self._stale.discard(key)
            arr = to_device_array(value, dtype)
            if arr.nbytes == buf.nbytes:
                if arr.nbytes:
                    self.device.queue.write_buffer(buf.gpu, 0, memoryview(arr).cast("B"))
                return buf
            del self._buffers[key]
        return super().weight_buffer(key, value, dtype)
