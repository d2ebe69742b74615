"""MultiHeadAttention (Keras' einsum formulation, spelled with MatMul / BatchMatMul)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError
from . import activations
from .base import Layer, register
from .regularizers import constraint_from, regularizer_from

LARGE_NEGATIVE = -1e9     # Keras' masked softmax adder for float32


@register("MultiHeadAttention")
class MultiHeadAttention(Layer):
    def __init__(self, config=None, flavor="tf_keras", class_name=None):
        super().__init__(config, flavor, class_name)
        c = self.config
        self.heads = int(c["num_heads"])
        self.key_dim = int(c["key_dim"])
        self.value_dim = int(self.cfg("value_dim", self.key_dim))
        self.use_bias = bool(self.cfg("use_bias", True))
        self.dropout = float(self.cfg("dropout", 0.0))
        axes = c.get("attention_axes")
        if axes is not None and list(axes) not in ([1], [-2]):
            raise ModelFormatError(f"MultiHeadAttention {self.name!r}: attention_axes {axes} are not supported "
                                   "(attention over the sequence axis of [batch, steps, features] inputs only)")
        out = c.get("output_shape")
        self.out_dim = None if out is None else (out if isinstance(out, int) else int(np.prod(out)))

    def _dense(self, name, d_in, d_out_shape):
        kw = {"regularizer": regularizer_from(self.config.get("kernel_regularizer")),
              "constraint": constraint_from(self.config.get("kernel_constraint"))}
        k = self.add_weight(f"{name}/kernel", (d_in, *d_out_shape), **kw)
        b = self.add_weight(f"{name}/bias", d_out_shape,
                            regularizer=regularizer_from(self.config.get("bias_regularizer")),
                            constraint=constraint_from(self.config.get("bias_constraint"))) if self.use_bias else None
        return k, b

    def build_all(self, q_shape, v_shape, k_shape):
        h = self.heads
        self.q = self._dense("query", q_shape[-1], (h, self.key_dim))
        self.k = self._dense("key", k_shape[-1], (h, self.key_dim))
        self.v = self._dense("value", v_shape[-1], (h, self.value_dim))
        out_dim = self.out_dim or q_shape[-1]
        k = self.add_weight("attention_output/kernel", (h, self.value_dim, out_dim),
                            regularizer=regularizer_from(self.config.get("kernel_regularizer")))
        b = self.add_weight("attention_output/bias", (out_dim,),
                            regularizer=regularizer_from(self.config.get("bias_regularizer"))) if self.use_bias else None
        self.o = (k, b)
        self.built = True

    def __call__(self, ctx, query, value=None, key=None, **kwargs):
        if isinstance(query, (list, tuple)):          # tf_keras may pass [query, value(, key)]
            query, value, key = (list(query) + [None, None])[:3]
        if value is None:
            raise ModelFormatError(f"MultiHeadAttention {self.name!r} was called without a value tensor")
        key = value if key is None else key
        for t in (query, value, key):
            if len(ctx.shape(t)) != 3:
                raise ModelFormatError(f"MultiHeadAttention {self.name!r}: inputs must be [batch, steps, features]")
        if not self.built:
            self.build_all(ctx.shape(query), ctx.shape(value), ctx.shape(key))
        return self.call(ctx, query, value, key, **kwargs)

    def _project(self, ctx, x, kb, dim):
        kernel, bias = kb
        h = self.heads
        d_in = ctx.shape(x)[-1]
        w = ctx.reshape(ctx.weight(kernel), [d_in, h * dim])
        b = None if bias is None else ctx.reshape(ctx.weight(bias), [h * dim])
        y = ctx.dense(x, w, b)                                         # [B, T, H*dim]
        y = ctx.reshape(y, [-1, ctx.shape(x)[1], h, dim])
        return ctx.transpose(y, [0, 2, 1, 3])                          # [B, H, T, dim]

    def call(self, ctx, query, value, key, attention_mask=None, use_causal_mask=False,
             return_attention_scores=False, **_):
        tq, tk = ctx.shape(query)[1], ctx.shape(key)[1]
        q = ctx.mul(self._project(ctx, query, self.q, self.key_dim), 1.0 / math.sqrt(self.key_dim))
        k = self._project(ctx, key, self.k, self.key_dim)
        v = self._project(ctx, value, self.v, self.value_dim)
        scores = ctx.matmul(q, k, transpose_b=True)                    # [B, H, Tq, Tk]
        mask = None
        if attention_mask is not None:
            mask = ctx.op("Cast", attention_mask, DstT="float32")
            mask = ctx.expand_dims(mask, 1) if len(ctx.shape(mask)) == 3 else mask
        if use_causal_mask:
            causal = np.tril(np.ones((tq, tk), np.float32))
            mask = causal if mask is None else ctx.mul(mask, causal)
        if mask is not None:
            scores = ctx.add(scores, ctx.mul(ctx.sub(1.0, mask), LARGE_NEGATIVE))
        attn = activations.softmax(ctx, scores, -1)
        if ctx.training and self.dropout > 0:
            attn = ctx.mul(attn, ctx.random_mask(ctx.shape(attn), self.dropout))
        out = ctx.transpose(ctx.matmul(attn, v), [0, 2, 1, 3])         # [B, Tq, H, Vd]
        out = ctx.reshape(out, [-1, tq, self.heads * self.value_dim])
        kernel, bias = self.o
        w = ctx.reshape(ctx.weight(kernel), [self.heads * self.value_dim, ctx.shape(kernel.value)[-1]])
        y = ctx.dense(out, w, None if bias is None else ctx.weight(bias))
        return [y, attn] if return_attention_scores else y
