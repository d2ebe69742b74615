"""model.summary(): Keras' table of layers, output shapes, parameter counts (and inputs for
functional models)."""
from __future__ import annotations

from .functional import InputLayer


def _shape(shapes) -> str:
    if not shapes:
        return "?"
    parts = ["(" + ", ".join(["None", *(str(d) for d in s[1:])]) + ")" for s in shapes]
    return parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"


def summary(model, print_fn, line_length: int = 98) -> None:
    net = model.net
    functional = not model._is_sequential
    cols = [0.33, 0.55, 0.67, 1.0] if functional else [0.45, 0.85, 1.0]
    stops = [int(line_length * c) for c in cols]
    heads = ["Layer (type)", "Output Shape", "Param #", "Connected to"][:len(stops)]

    def row(values):
        line, start = "", 0
        for v, stop in zip(values, stops):
            line += str(v)[: stop - start - 1].ljust(stop - start)
            start = stop
        print_fn(line.rstrip())

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    row(heads)
    print_fn("=" * line_length)
    layers = model.layers
    for i, layer in enumerate(layers):
        calls = [k for (name, k) in net.call_shapes if name == layer.name]
        if isinstance(layer, InputLayer):
            shapes = [layer.batch_shape]
        else:
            shapes = net.call_shapes.get((layer.name, calls[0])) if calls else None
        values = [f"{layer.name} ({layer.class_name})", _shape(shapes), f"{layer.count_params():,}"]
        if functional:
            spec = next((s for s in net.topology.layers if s.name == layer.name), None)
            srcs = []
            for call in (spec.calls if spec else []):
                if call is None:
                    continue
                from .topology import refs_in

                srcs += [f"{r.layer}[{r.node}][{r.tensor}]" for r in refs_in(call.args) + refs_in(call.kwargs)]
            values.append(", ".join(srcs))
        row(values)
        print_fn(("=" if i == len(layers) - 1 else "_") * line_length)
    total = model.count_params()
    trainable = sum(w.value.size for w in model.trainable_weights)
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * line_length)
