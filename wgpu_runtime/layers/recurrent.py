"""Recurrent layers, unrolled over time with registry ops: SimpleRNN, LSTM, GRU (reset_after true
and false), Bidirectional.

The input projection of every step is one MatMul over [batch * steps, features]; then each step
is the recurrent MatMul plus elementwise gates, as Keras' cells compute them (LSTM gates i, f, c,
o; GRU gates z, r, h). ``go_backwards`` walks the sequence from the end and returns its outputs in
that order, as Keras does. Dropout and recurrent dropout (training only) use one mask for all
steps (Keras' implementation 2).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError
from . import activations
from .base import Layer, register
from .regularizers import constraint_from, regularizer_from


def _unstack(ctx, x, steps: int):
    out = ctx.op("Unpack", x, axis=1, num=steps)
    return list(out) if isinstance(out, tuple) else [out]


class _RNN(Layer):
    gates = 1
    n_states = 1

    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        c = self.config
        if c.get("stateful"):
            raise ModelFormatError(f"{self.class_name} {self.name!r}: stateful RNNs are not supported")
        if c.get("time_major"):
            raise ModelFormatError(f"{self.class_name} {self.name!r}: time_major inputs are not supported")
        self.units = int(c["units"])
        self.act = activations.get(self.cfg("activation", "tanh"), flavor)
        default_rec = "hard_sigmoid" if flavor == "tfjs" else "sigmoid"
        self.rec_act = activations.get(self.cfg("recurrent_activation", default_rec), flavor)
        self.use_bias = bool(self.cfg("use_bias", True))
        self.return_sequences = bool(self.cfg("return_sequences", False))
        self.return_state = bool(self.cfg("return_state", False))
        self.go_backwards = bool(self.cfg("go_backwards", False))
        self.dropout = float(self.cfg("dropout", 0.0))
        self.recurrent_dropout = float(self.cfg("recurrent_dropout", 0.0))

    def _kw(self, p):
        return {"regularizer": regularizer_from(self.config.get(f"{p}_regularizer")),
                "constraint": constraint_from(self.config.get(f"{p}_constraint"))}

    def bias_shape(self):
        return (self.gates * self.units,)

    def build(self, shape):
        if isinstance(shape, list):
            shape = shape[0]
        u = self.units
        self.kernel = self.add_weight("kernel", (shape[-1], self.gates * u), **self._kw("kernel"))
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (u, self.gates * u), **self._kw("recurrent"))
        self.bias = self.add_weight("bias", self.bias_shape(), **self._kw("bias")) if self.use_bias else None

    # per subclass: input bias (added to x @ kernel) and step(ctx, xt, states) -> states
    def input_bias(self, ctx):
        return None if self.bias is None else ctx.weight(self.bias)

    def call(self, ctx, inputs, initial_state=None, **_):
        states = None
        if isinstance(inputs, (list, tuple)):
            inputs, states = inputs[0], list(inputs[1:]) or None
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        x = inputs
        _, steps, feat = ctx.shape(x)
        if ctx.training and 0 < self.dropout < 1:
            x = ctx.mul(x, ctx.random_mask((ctx.shape(x)[0], 1, feat), self.dropout))
        xw = ctx.dense(x, ctx.weight(self.kernel), self.input_bias(ctx))
        xs = _unstack(ctx, xw, steps)
        if states is None:
            states = [ctx.zeros(x, [self.units]) for _ in range(self.n_states)]
        elif len(states) != self.n_states:
            raise ModelFormatError(f"{self.class_name} {self.name!r} takes {self.n_states} initial states, "
                                   f"got {len(states)}")
        self.rec_mask = None
        if ctx.training and 0 < self.recurrent_dropout < 1:
            self.rec_mask = ctx.random_mask((ctx.shape(x)[0], self.units), self.recurrent_dropout)
        self.prepare(ctx)
        outs = []
        for t in (reversed(range(steps)) if self.go_backwards else range(steps)):
            states = self.step(ctx, xs[t], states)
            outs.append(states[0])
        y = ctx.op("Pack", *outs, axis=1) if self.return_sequences else outs[-1]
        return [y, *states] if self.return_state else y

    def prepare(self, ctx):
        self.U = ctx.weight(self.recurrent_kernel)

    def recurrent_input(self, ctx, h):
        return h if self.rec_mask is None else ctx.mul(h, self.rec_mask)


@register("SimpleRNN")
class SimpleRNN(_RNN):
    def step(self, ctx, xt, states):
        h = self.recurrent_input(ctx, states[0])
        return [self.act(ctx, ctx.add(xt, ctx.matmul(h, self.U)))]


@register("LSTM")
class LSTM(_RNN):
    gates, n_states = 4, 2

    def step(self, ctx, xt, states):
        h, c = states
        z = ctx.add(xt, ctx.matmul(self.recurrent_input(ctx, h), self.U))
        i, f, g, o = ctx.split(z, 4, 1)
        i, f, o = self.rec_act(ctx, i), self.rec_act(ctx, f), self.rec_act(ctx, o)
        c = ctx.add(ctx.mul(f, c), ctx.mul(i, self.act(ctx, g)))
        return [ctx.mul(o, self.act(ctx, c)), c]


@register("GRU")
class GRU(_RNN):
    gates = 3

    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        default = flavor != "tfjs"           # TF.js defaults to reset_after false, Keras 2+ to true
        self.reset_after = bool(self.cfg("reset_after", default))

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self, ctx):
        if self.bias is None:
            return None
        b = ctx.weight(self.bias)
        return ctx.take(b, 0, 0) if self.reset_after else b

    def prepare(self, ctx):
        u = self.units
        U = ctx.weight(self.recurrent_kernel)
        if self.reset_after:
            self.U = U
            self.rec_bias = None if self.bias is None else ctx.take(ctx.weight(self.bias), 1, 0)
        else:
            self.U_zr = ctx.slice(U, [0, 0], [u, 2 * u])
            self.U_h = ctx.slice(U, [0, 2 * u], [u, u])

    def step(self, ctx, xt, states):
        h = states[0]
        hin = self.recurrent_input(ctx, h)
        xz, xr, xh = ctx.split(xt, 3, 1)
        if self.reset_after:
            rec = ctx.matmul(hin, self.U)
            if self.rec_bias is not None:
                rec = ctx.add(rec, self.rec_bias)
            rz, rr, rh = ctx.split(rec, 3, 1)
            z = self.rec_act(ctx, ctx.add(xz, rz))
            r = self.rec_act(ctx, ctx.add(xr, rr))
            hh = self.act(ctx, ctx.add(xh, ctx.mul(r, rh)))
        else:
            rz, rr = ctx.split(ctx.matmul(hin, self.U_zr), 2, 1)
            z = self.rec_act(ctx, ctx.add(xz, rz))
            r = self.rec_act(ctx, ctx.add(xr, rr))
            hh = self.act(ctx, ctx.add(xh, ctx.matmul(ctx.mul(r, hin), self.U_h)))
        return [ctx.add(ctx.mul(z, h), ctx.mul(ctx.sub(1.0, z), hh))]


def _reverse_time(ctx, y):
    rank = len(ctx.shape(y))
    full = (1 << rank) - 1
    strides = [1] * rank
    strides[1] = -1
    return ctx.op("StridedSlice", y, np.zeros(rank, np.int32), np.zeros(rank, np.int32),
                  np.array(strides, np.int32), begin_mask=full, end_mask=full)


@register("Bidirectional")
class Bidirectional(Layer):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        from .functional import make_layer

        inner = self.config["layer"]
        icfg = dict(inner.get("config") or {})
        fwd = {**icfg, "name": f"forward_{icfg.get('name', 'rnn')}"}
        back_spec = self.config.get("backward_layer")
        if back_spec:
            bcfg = dict(back_spec.get("config") or {})
            bcls = back_spec["class_name"]
        else:
            bcfg = {**icfg, "go_backwards": not icfg.get("go_backwards", False),
                    "name": f"backward_{icfg.get('name', 'rnn')}"}
            bcls = inner["class_name"]
        self.forward = make_layer(inner["class_name"], fwd, flavor, fwd["name"])
        self.backward = make_layer(bcls, bcfg, flavor, bcfg.get("name", "backward"))
        self.sublayers = [self.forward, self.backward]
        self.merge_mode = self.config.get("merge_mode", "concat")

    def call(self, ctx, inputs, initial_state=None, **_):
        if isinstance(inputs, (list, tuple)):
            inputs, rest = inputs[0], list(inputs[1:])
            initial_state = rest or initial_state
        fs = bs = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fs, bs = list(initial_state[:half]), list(initial_state[half:])
        yf = self.forward(ctx, inputs, initial_state=fs)
        yb = self.backward(ctx, inputs, initial_state=bs)
        sf = sb = []
        if self.forward.return_state:
            yf, sf = yf[0], yf[1:]
            yb, sb = yb[0], yb[1:]
        if self.forward.return_sequences:
            yb = _reverse_time(ctx, yb)
        mode = self.merge_mode
        if mode == "concat":
            y = [ctx.concat([yf, yb], len(ctx.shape(yf)) - 1)]
        elif mode == "sum":
            y = [ctx.add(yf, yb)]
        elif mode == "mul":
            y = [ctx.mul(yf, yb)]
        elif mode == "ave":
            y = [ctx.mul(ctx.add(yf, yb), 0.5)]
        elif mode is None:
            y = [yf, yb]
        else:
            raise ModelFormatError(f"Bidirectional {self.name!r}: merge_mode {mode!r} is not supported")
        outs = y + list(sf) + list(sb)
        return outs[0] if len(outs) == 1 else outs


@register("TimeDistributed")
class TimeDistributed(Layer):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        from .functional import make_layer

        inner = self.config["layer"]
        icfg = dict(inner.get("config") or {})
        self.inner = make_layer(inner["class_name"], icfg, flavor, icfg.get("name", "inner"))
        self.sublayers = [self.inner]

    def call(self, ctx, x, **_):
        shape = ctx.shape(x)
        y = self.inner(ctx, ctx.reshape(x, [-1, *shape[2:]]))
        return ctx.reshape(y, [-1, shape[1], *ctx.shape(y)[1:]])
