"""Graph -> execution plan for one set of input shapes.

Planning walks the nodes needed for the requested outputs in order. Each node's outputs get
shapes from the registry's shape rule; a node whose inputs are all known on the host (weights,
Shape results, shape arithmetic), or whose op reads only its inputs' shapes (``shape_only``: Shape,
Size, Rank), is folded there with its numpy reference; every other node is lowered to GPU
dispatches. Then temporaries get physical buffers by liveness, and every
dispatch gets its uniform buffer and bind group -- so running a plan is only: write inputs,
encode the prepared steps, submit once, read the outputs back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import wgpu

from ..dtypes import dtype_of, host_numpy_dtype
from ..errors import GraphError, KernelCompileError, UnsupportedOpError
from ..memory import Buf, Uploader, assign_temps, create_buffer, nbytes_of
from ..ops import registry
from ..ops.registry import Tensor
from .. import textures, tuning
from ..textures import Tex
from .graph import Graph
from ..ops.launch import Step, lower_node
from .collector import StepCollector


_log = logging.getLogger(__name__)


class DataDependentError(GraphError):
    """A node needs, at plan time, a value that depends on the inputs' data (a host op on data, a
    shape computed on the GPU): GraphModel then runs the graph on the dynamic executor."""


@dataclass
class Plan:
    steps: list[Step]
    inputs: dict[str, Buf]                 # placeholder node name -> its buffer
    outputs: list[Tensor]                  # requested outputs, in order
    temp_bytes: int                        # peak activation memory (physical temp buffers)
    const_bytes: int
    staging: object = None                 # one MAP_READ buffer for all device outputs
    staging_offsets: list = field(default_factory=list)
    staging_ring: list = field(default_factory=list, repr=False)   # idle staging buffers (executor: one per call in flight)
    tensors: dict = field(default_factory=dict, repr=False)   # (node, output) -> Tensor, every planned one
    ahead: list = field(default_factory=list, repr=False)     # the next call's body, encoded ahead (executor)

    @property
    def dispatches(self) -> int:
        """Compute dispatches (the steps but the copies into texture operands)."""
        return sum(st.pipeline is not None for st in self.steps)

    @cached_property
    def passes(self) -> list:
        """The steps as the executor encodes them, worked out once: runs of dispatches (a list
        of steps, one compute pass each) and, between them, copy steps (a copy cannot run
        inside a pass)."""
        out, run = [], []
        for st in self.steps:
            if st.pipeline is None:
                if run:
                    out.append(run)
                out.append(st)
                run = []
            else:
                run.append(st)
        return out + ([run] if run else [])


class Planner(StepCollector):
    defer_pipelines = True      # pipelines compile in the background until _finish binds them

    # planning ----------------------------------------------------------------------------
    def build(self, graph: Graph, feeds: dict[str, tuple[tuple[int, ...], str]],
              targets: list[tuple[str, int]]) -> Plan:
        order = graph.order(list(dict.fromkeys(name for name, _ in targets)))
        missing = registry.missing_ops(n for n in order if n.op not in ("Placeholder", "Const"))
        if missing:
            raise UnsupportedOpError(missing)
        env: dict[tuple[str, int], Tensor] = {}
        inputs: dict[str, Buf] = {}
        for node in order:
            if node.op == "Placeholder":
                if node.name not in feeds:
                    raise GraphError(f"placeholder {node.name!r} is needed but was not fed")
                shape, dtype = feeds[node.name]
                buf = Buf(nbytes_of(shape), "input", label=node.name)
                inputs[node.name] = buf
                env[(node.name, 0)] = Tensor(tuple(shape), dtype, buf=buf)
                continue
            if node.op == "Const":
                value = self.model.weights.get(node.name)
                if value is None:
                    raise GraphError(f"Const node {node.name!r} has no weight in the manifest")
                env[(node.name, 0)] = Tensor(tuple(value.shape), dtype_of(value), value=value,
                                             weight_key=node.name)
                continue
            self._plan_node(node, graph, env)
        outputs = []
        for name, idx in targets:
            if (name, idx) not in env:
                raise GraphError(f"node {name!r} has no output {idx}")
            outputs.append(env[(name, idx)])
        plan = self._finish(inputs, outputs)
        plan.tensors = env
        return plan

    def _plan_node(self, node, graph: Graph, env) -> None:
        op = registry.get(node.op)
        ins = []
        for name, idx in graph.data_inputs(node):
            if (name, idx) not in env:
                raise GraphError(f"input {name}:{idx} is not produced by its node", node)
            ins.append(env[(name, idx)])
        if not op.shape_only and any(t.value is None and (op.lower is None or op.is_host_input(i, len(ins), node.attrs))
                                     for i, t in enumerate(ins)):
            raise DataDependentError("needs the value of an input computed from the model's inputs "
                                     "(the dynamic executor runs such graphs)", node)
        try:
            specs = op.shape(node.attrs, ins)
        except GraphError:
            raise
        except (ValueError, IndexError, KeyError, TypeError) as e:  # a shape rule rejecting the inputs: say which node
            raise GraphError(f"shape rule failed for inputs {[t.shape for t in ins]}: {e}", node) from e
        if op.shape_only or op.lower is None or all(t.value is not None for t in ins):
            values = op.run_reference(node.attrs, [self._host_value(t, node, op.shape_only) for t in ins])
            outs = [Tensor(tuple(np.shape(v)), dtype_of(v), value=np.asarray(v)) for v in values]
            for t in outs:   # Identity / Reshape of a weight: the same bytes, the same buffer
                t.weight_key = next((i.weight_key for i in ins if i.weight_key and _same_bytes(t.value, i.value)), None)
        else:
            outs = [Tensor(tuple(int(d) for d in s), d) for s, d in specs]
            first = len(self.steps)
            try:
                with tuning.recording() as choices:     # the variants chosen: a kernel that does not
                    lower_node(self, op, node, ins, outs)   # compile is planned again without one
            except GraphError:
                raise
            except (ValueError, TypeError, NotImplementedError) as e:  # an attribute value the kernel lacks
                raise GraphError(str(e), node) from e
            for step in self.steps[first:]:
                step.choices = tuple(choices)
            for i, t in enumerate(outs):
                if t.buf is None and t.value is None:
                    # outputs nobody reads may be left unwritten (e.g. FusedBatchNorm's statistics)
                    t.buf = Buf(nbytes_of(t.shape), "temp", label=f"{node.name}:{i}")
        for i, t in enumerate(outs):
            env[(node.name, i)] = t

    @staticmethod
    def _host_value(t: Tensor, node, shape_only: bool = False) -> np.ndarray:
        if t.value is None:
            if shape_only:   # the op reads only the shape: a stand-in of that shape holding no data
                return np.broadcast_to(np.zeros((), host_numpy_dtype(t.dtype)), t.shape)
            raise GraphError("this op runs on the host and needs its inputs' values before the "
                             "graph runs, but one depends on the model's inputs", node)
        return t.value

    def _finish(self, inputs: dict[str, Buf], outputs: list[Tensor]) -> Plan:
        dev = self.device
        for t in outputs:
            if t.buf is not None and t.value is None:
                t.buf.pinned = True
        temps: dict[int, Buf] = {}
        for i, step in enumerate(self.steps):
            for b in (b.root for b in step.bindings):     # a view lives as long as its buffer
                if b.first < 0:
                    b.first = i
                b.last = i
                if b.kind == "temp":
                    temps[id(b)] = b
        for t in outputs:   # an output written by no step (e.g. an unused output slot)
            if t.buf is not None and t.buf.kind == "temp" and id(t.buf) not in temps:
                t.buf.first = t.buf.last = len(self.steps)
                temps[id(t.buf)] = t.buf
        alloc = assign_temps(dev, list(temps.values()), len(self.steps))
        for b in inputs.values():
            b.gpu = create_buffer(dev, b.nbytes, label=b.label)
        up = Uploader(dev)
        for b in self.consts:
            b.gpu = up(b.data, b.label)
        up.flush()
        self.finish_textures()
        self.finish_pipelines()
        for step in self.steps:
            if step.pipeline is None:       # a copy into a texture: nothing to bind
                src, tex = step.bindings
                step.copies = textures.prepare_copy(src.root.gpu, src.offset, tex.texture, step.texels)
                continue
            entries = [{"binding": i, "resource": b.resource() if isinstance(b, Tex)
                        else {"buffer": b.gpu, "offset": 0, "size": b.gpu.size} if b.base is None
                        else {"buffer": b.base.gpu, "offset": b.offset, "size": (b.nbytes + 3) // 4 * 4}}
                       for i, b in enumerate(step.bindings)]
            if step.params:
                step.uniform = dev.device.create_buffer_with_data(data=step.params, usage=wgpu.BufferUsage.UNIFORM)
                entries.append({"binding": len(step.bindings),
                                "resource": {"buffer": step.uniform, "offset": 0, "size": len(step.params)}})
            try:
                step.bind_group = dev.device.create_bind_group(layout=step.pipeline.get_bind_group_layout(0),
                                                               entries=entries)
            except wgpu.GPUError as e:   # caught here, before anything is submitted
                raise GraphError(f"node {step.node!r} ({step.op}): kernel {step.kernel} cannot be bound: {e}") from None
        plan = Plan(self.steps, inputs, outputs, alloc.bytes, sum(b.nbytes for b in self.consts))
        offsets, total = [], 0
        for t in outputs:
            offsets.append(total if t.value is None else None)
            if t.value is None:
                total += max(4, nbytes_of(t.shape))
        if total:
            plan.staging = dev.device.create_buffer(
                size=total, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST, label="outputs")
            plan.staging_ring.append(plan.staging)
        plan.staging_offsets = offsets
        return plan


MAX_REPLANS = 16        # rounds of kernel variants passed over for one plan before its error stands


def build_plan(model, graph: Graph, feeds: dict, targets: list) -> Plan:
    """``Planner(model, model.device).build(...)``, planned again without the kernel variants
    whose kernels do not compile on the device (:func:`without_uncompiled_variants`)."""
    return without_uncompiled_variants(model.device, lambda: Planner(model, model.device).build(graph, feeds, targets))


def without_uncompiled_variants(device, attempt):
    """``attempt()`` (planning: a static plan, or a dynamic program), made again without a
    kernel variant whose kernel does not compile on ``device`` (a WGSL a driver or naga rejects:
    a faster variant must never cost a model that its baseline kernel runs). Such a variant is
    passed over on that device from then on (tuning.pass_over; ``Device.refused_variants``) with
    a warning. A kernel that no variant choice avoids raises its KernelCompileError, and the
    variants passed over on the way are not kept (passing over them did not help)."""
    passed: list = []
    try:
        for _ in range(MAX_REPLANS):
            try:
                return attempt()
            except KernelCompileError as e:
                points = tuning.pass_over(device, e.choices, str(e))
                if not points:
                    raise
                passed += points
                names = sorted({f"{p.family} {p.chosen!r}" for p in points})
                _log.warning("kernel variant %s does not compile on %s, so it is passed over there "
                             "(%d shape classes): %s", ", ".join(names), device.name, len(points), e)
        return attempt()
    except KernelCompileError:
        for p in passed:
            device.refused_variants.pop((p.family, p.shape_class, p.chosen), None)
        raise


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.dtype == b.dtype and a.size == b.size and a.flags.c_contiguous and b.flags.c_contiguous
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])
