"""One node's GPU work, prepared once and replayed on whatever buffers its inputs live in.

A :class:`Program` is what the static planner would emit for a one-node graph: the op's
lowering runs once per (node, input shapes, host-input values) through the ordinary
:class:`~wgpu_runtime.ops.launch.Lowering` context, which records steps on virtual buffers.
Running it binds those to real ones -- the inputs' buffers, pooled buffers for outputs and
scratch, the model's weight buffers -- and records the dispatches into the stream (bind groups
are cached per set of buffers, so a loop that ping-pongs between pooled buffers reuses them).
"""
from __future__ import annotations

import wgpu

from ... import tuning
from ...errors import GraphError, KernelCompileError
from ...memory import Buf, Uploader, nbytes_of
from ...ops.registry import Tensor
from ...textures import Tex
from ...ops.launch import lower_node
from ..collector import StepCollector
from ..plan import without_uncompiled_variants
from .values import DevBuf, Value

_BIND_CACHE = 16     # bind groups kept per step


def _lowered(model, device, node, op, ins: list[Tensor], specs) -> tuple[StepCollector, list[Tensor]]:
    """The node lowered into a new collector, and its output Tensors. A kernel that does not
    compile raises KernelCompileError with the variant choices made (the ``ins`` as they were)."""
    outs = [Tensor(tuple(int(d) for d in s), d) for s, d in specs]
    col = StepCollector(model, device)
    bufs = [t.buf for t in ins]
    with tuning.recording() as choices:
        try:
            lower_node(col, op, node, ins, outs)
        except KernelCompileError as e:
            for t, b in zip(ins, bufs):     # host inputs put on the device by this attempt's collector
                t.buf = b
            raise KernelCompileError(f"node {node.name!r} ({node.op}): {e}", e.kernel, [tuple(choices)]) from None
    return col, outs


class Program:
    def __init__(self, model, device, node, op, ins: list[Tensor]):
        self.device = device
        specs = op.shape(node.attrs, ins)
        col, outs = without_uncompiled_variants(device, lambda: _lowered(model, device, node, op, ins, specs))
        up = Uploader(device)
        for b in col.consts:
            b.gpu = up(b.data, b.label)
        up.flush()
        col.finish_textures()
        self.consts = col.consts                       # keeps them alive with the program
        self.textures = col.textures
        self.inputs = [t.buf if t.buf is not None and t.buf.kind == "input" else None for t in ins]
        # what each output is: ("in", i) an input's buffer, ("fixed", buf) a weight/const,
        # ("host", value), or ("new", Buf) a buffer written by the steps
        self.outputs = []
        for i, t in enumerate(outs):
            if t.value is not None and t.buf is None:
                self.outputs.append(("host", t.value, t.shape, t.dtype))
                continue
            if t.buf is None:
                t.buf = Buf(nbytes_of(t.shape), "temp", label=f"{node.name}:{i}")
            if t.buf.kind == "input":
                self.outputs.append(("in", self.inputs.index(t.buf), t.shape, t.dtype))
            elif t.buf.kind in ("const", "weight"):
                self.outputs.append(("fixed", t.buf, t.shape, t.dtype))
            else:
                self.outputs.append(("new", t.buf, t.shape, t.dtype))
        self.steps = []
        for st in col.steps:
            uniform = None
            if st.params:
                uniform = device.device.create_buffer_with_data(data=st.params, usage=wgpu.BufferUsage.UNIFORM)
            self.steps.append((st, uniform, {}))

    def run(self, stream, in_bufs: list[DevBuf | None]) -> list[Value]:
        """Record the steps reading ``in_bufs`` (by input position); the outputs as Values."""
        gpu: dict[int, tuple] = {}          # id(Buf) -> (gpu buffer, DevBuf keeping it alive)
        for b, d in zip(self.inputs, in_bufs):
            if b is not None:
                gpu[id(b)] = (d.gpu, d)
        results = []
        for kind, x, shape, dtype in self.outputs:
            if kind == "host":
                results.append(Value(shape, dtype, host=x))
            elif kind == "in":
                results.append(Value(shape, dtype, dev=in_bufs[x]))
            elif kind == "fixed":
                results.append(Value(shape, dtype, dev=DevBuf(x.gpu, x.gpu.size)))
            else:
                d = gpu.get(id(x))
                if d is None:
                    d = (None, stream.alloc(x.nbytes))
                    d = gpu[id(x)] = (d[1].gpu, d[1])
                results.append(Value(shape, dtype, dev=d[1]))
        for st, uniform, cache in self.steps:
            if st.pipeline is None:         # a copy into a texture operand
                src = st.bindings[0].root
                g = gpu.get(id(src))
                stream.copy_to_texture(g[0] if g is not None else src.gpu, st.bindings[0].offset,
                                       st.bindings[1].texture, st.texels)
                continue
            bufs = []
            for v in st.bindings:
                if isinstance(v, Tex):      # a texture operand: the program's own, fixed
                    bufs.append((v, 0, 0))
                    continue
                b = v.root                  # a view (Buf.view) binds a sub-range of its buffer
                g = gpu.get(id(b))
                if g is None:
                    if b.kind == "temp":
                        d = stream.alloc(b.nbytes)
                        g = gpu[id(b)] = (d.gpu, d)
                    else:
                        g = gpu[id(b)] = (b.gpu, None)
                bufs.append((g[0], v.nbytes, v.offset))
            key = tuple((id(g), off) for g, _, off in bufs)
            group = cache.get(key)
            if group is None:
                entries = [{"binding": i, "resource": g.resource() if isinstance(g, Tex) else
                            {"buffer": g, "offset": off, "size": min(g.size - off, max(16, (n + 15) // 16 * 16))}}
                           for i, (g, n, off) in enumerate(bufs)]
                if uniform is not None:
                    entries.append({"binding": len(bufs),
                                    "resource": {"buffer": uniform, "offset": 0, "size": uniform.size}})
                try:
                    group = self.device.device.create_bind_group(layout=st.pipeline.get_bind_group_layout(0),
                                                                 entries=entries)
                except wgpu.GPUError as e:
                    raise GraphError(f"node {st.node!r} ({st.op}): kernel {st.kernel} cannot be bound: {e}") from None
                if len(cache) >= _BIND_CACHE:
                    cache.pop(next(iter(cache)))
                group = cache[key] = (group, [g for g, _, _ in bufs])  # the buffers stay alive with it
            stream.dispatch(st.pipeline, group[0], st.grid)
        return results
