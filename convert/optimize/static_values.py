"""Values of tensors that are fixed by the graph alone (constants, and shapes that are known
even when other dimensions are not -- the time steps of a [time, None, features] tensor)."""
from __future__ import annotations

import numpy as np


class StaticValues:
    """Static values of a GraphDef's tensors, from TensorFlow's constant evaluation plus one
    rule it lacks: ``StridedSlice(Shape(x))`` picking dimensions of ``x`` that are known."""

    def __init__(self, graph_def):
        import tensorflow as tf

        with tf.Graph().as_default() as self.graph:
            tf.graph_util.import_graph_def(graph_def, name="")

    def __call__(self, ref: str) -> np.ndarray | None:
        import tensorflow as tf

        if ref.startswith("^"):
            return None
        try:
            t = self.graph.get_tensor_by_name(ref if ":" in ref else ref + ":0")
        except (KeyError, ValueError):
            return None
        if t.dtype in (tf.variant, tf.resource):
            return None
        return self._value(t)

    def _value(self, t):
        import tensorflow as tf

        v = tf.get_static_value(t)
        if v is not None:
            return np.asarray(v)
        op = t.op
        if op.type == "Identity":
            return self._value(op.inputs[0])
        if op.type == "StridedSlice" and op.inputs[0].op.type == "Shape":
            return self._shape_slice(op)
        return None

    def _shape_slice(self, op):
        import tensorflow as tf

        dims = op.inputs[0].op.inputs[0].shape
        if dims.rank is None:
            return None
        begin, end, strides = (tf.get_static_value(x) for x in op.inputs[1:4])
        masks = {k: op.get_attr(k) for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                                             "shrink_axis_mask")}
        if begin is None or strides is None or masks["ellipsis_mask"] or masks["new_axis_mask"]:
            return None
        if masks["shrink_axis_mask"] == 1 and len(begin) == 1:       # x.shape[i]
            d = dims[int(begin[0])]
            return None if d is None else np.array(d, op.outputs[0].dtype.as_numpy_dtype)
        if end is None or len(begin) != 1:
            return None
        b = None if masks["begin_mask"] & 1 else int(begin[0])
        e = None if masks["end_mask"] & 1 else int(end[0])
        picked = dims.as_list()[b:e:int(strides[0])]
        if any(d is None for d in picked):
            return None
        return np.array(picked, op.outputs[0].dtype.as_numpy_dtype)
