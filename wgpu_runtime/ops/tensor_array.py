"""TensorList* (TF2's TensorArray, with value semantics) and TensorArrayV3* (TF1's TensorArray, a
mutable resource), as runtime ops of the dynamic executor (see control.py).

A list holds its elements by reference -- whatever tensors they are (GPU buffers there, numpy
arrays in the references). Moving data is left to registry ops run through the runtime: a
list made from a tensor (TensorListFromTensor, Scatter, Split; TensorArrayScatter/Split) keeps
that tensor and reads element k lazily with one GatherV2 (one copy kernel on the GPU); stacking
a list that still is exactly its source tensor returns the tensor itself, otherwise one Pack
(one copy per element). Reading an element never set gives zeros of the element shape (as TF
does when it is fully defined). Element shapes use -1 for unknown dims; a scalar -1 means an
unknown rank.

No registry cases: lists and handles are not arrays. tests/test_dynamic_models.py runs them in
converted models (map_fn, TensorArray in loops, with and without control flow v2), and
test_dynamic_executor runs each op through the numpy references.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import host_numpy_dtype
from .common import F, I
from .runtime import runtime_op, typed_obj


class _Row:
    """Element ``k`` (or rows [k, k + n) when ``n`` is given) of a tensor, read when needed."""

    __slots__ = ("src", "k", "n")

    def __init__(self, src, k: int, n: int | None = None):
        self.src, self.k, self.n = src, k, n

    def read(self, rt):
        if self.n is None:
            return rt.op("GatherV2", {}, [self.src, rt.value(np.int32(self.k)), rt.value(np.int32(0))])[0]
        shape = rt.shape(self.src)
        begin = np.zeros(len(shape), np.int32)
        begin[0] = self.k
        size = np.array([self.n, *shape[1:]], np.int32)
        return rt.op("Slice", {}, [self.src, rt.value(begin), rt.value(size)])[0]


class TensorList:
    def __init__(self, items: list, element_shape, dtype: str):
        self.items = items                      # tensor | _Row | None (never set)
        self.element_shape = element_shape      # tuple with -1 for unknown dims, or None
        self.dtype = dtype

    def copy(self, items=None) -> "TensorList":
        return TensorList(list(self.items) if items is None else items, self.element_shape, self.dtype)

    def get(self, rt, k: int, element_shape=None):
        if not 0 <= k < len(self.items):
            raise ValueError(f"index {k} is out of range for a list of {len(self.items)} elements")
        item = self.items[k]
        if item is None:
            return _zeros(rt, _merge_shapes(self.element_shape, element_shape), self.dtype)
        if isinstance(item, _Row):
            item = self.items[k] = item.read(rt)         # read once
        return item

    def stack(self, rt, element_shape=None, indices=None):
        n = len(self.items)
        idx = list(range(n)) if indices is None else indices
        bad = next((k for k in idx if not 0 <= k < n), None)
        if bad is not None:     # as TF: no negative indices, none past the end
            raise ValueError(f"index {bad} is out of range for a list of {n} elements")
        if idx and all(isinstance(self.items[k], _Row) and self.items[k].n is None for k in idx):
            src = self.items[idx[0]].src
            if (rt.shape(src)[0] == len(idx) and all(self.items[k].src is src and self.items[k].k == j
                                                     for j, k in enumerate(idx))):
                return src                              # still exactly the tensor it was made from
        if not idx:
            shape = _merge_shapes(self.element_shape, element_shape)
            if shape is None or -1 in shape:
                raise ValueError("cannot stack an empty list whose element shape is not fully known")
            return rt.value(np.zeros((0, *shape), host_numpy_dtype(self.dtype, np.float32)))
        elems = [self.get(rt, k, element_shape) for k in idx]
        return rt.op("Pack", {"axis": 0, "N": len(elems)}, elems)[0]


def _merge_shapes(a, b):
    """The more specific of two element shapes (None: unknown rank; -1: unknown dim)."""
    if a is None:
        return b
    if b is None:
        return a
    if len(a) != len(b):
        raise ValueError(f"element shapes {a} and {b} differ in rank")
    return tuple(x if x != -1 else y for x, y in zip(a, b))


def _zeros(rt, shape, dtype):
    if shape is None or -1 in shape:
        raise ValueError("reading an element never written needs a fully known element shape, got "
                         f"{'an unknown rank' if shape is None else list(shape)}")
    return rt.value(np.zeros(shape, host_numpy_dtype(dtype, np.float32)))


def _int(rt, t) -> int:
    return int(np.reshape(rt.host(t), -1)[0])


def _ints(rt, t) -> list[int]:
    return [int(v) for v in np.reshape(rt.host(t), -1)]


def _shape_arg(rt, t):
    a = np.asarray(rt.host(t))
    if a.ndim == 0:
        return None if int(a) == -1 else ()
    return tuple(int(v) for v in a.reshape(-1))


def _rows(rt, tensor) -> list:
    return [_Row(tensor, k) for k in range(rt.shape(tensor)[0])] if rt.shape(tensor) else []


def _list(rt, t) -> TensorList:
    return typed_obj(rt, t, TensorList, "a TensorList")


def _check_shape(rt, t, lst: TensorList) -> None:
    es, shape = lst.element_shape, rt.shape(t)
    if es is not None and (len(es) != len(shape) or any(a not in (-1, b) for a, b in zip(es, shape))):
        raise ValueError(f"a tensor of shape {shape} does not fit a list of element shape {list(es)}")


def _handle(rt, lst):
    return rt.opaque(lst, "variant")


def _variant(attrs, ins):
    return [((), "variant")]


def _element(attrs, ins):
    return [((), attrs.get("element_dtype") or F)]


# --------------------------------------------------------------------------------- TensorList
def _reserve(rt, attrs, ins):
    es, n = _shape_arg(rt, ins[0]), _int(rt, ins[1])
    return [_handle(rt, TensorList([None] * n, es, attrs.get("element_dtype") or F))]


def _empty(rt, attrs, ins):
    return [_handle(rt, TensorList([], _shape_arg(rt, ins[0]), attrs.get("element_dtype") or F))]


def _from_tensor(rt, attrs, ins):
    tensor = ins[0]
    if not rt.shape(tensor):
        raise ValueError("TensorListFromTensor needs a tensor of rank >= 1")
    es = _merge_shapes(_shape_arg(rt, ins[1]), tuple(rt.shape(tensor)[1:]))
    return [_handle(rt, TensorList(_rows(rt, tensor), es, attrs.get("element_dtype") or rt.dtype(tensor)))]


def _get_item(rt, attrs, ins):
    lst = _list(rt, ins[0])
    return [lst.get(rt, _int(rt, ins[1]), _shape_arg(rt, ins[2]) if len(ins) > 2 else None)]


def _set_item(rt, attrs, ins):
    lst, k, item = _list(rt, ins[0]), _int(rt, ins[1]), ins[2]
    items = list(lst.items)
    if k >= len(items) and attrs.get("resize_if_index_out_of_bounds"):
        items += [None] * (k + 1 - len(items))
    if not 0 <= k < len(items):
        raise ValueError(f"index {k} is out of range for a list of {len(items)} elements")
    _check_shape(rt, item, lst)
    items[k] = item
    return [_handle(rt, lst.copy(items))]


def _stack(rt, attrs, ins):
    lst = _list(rt, ins[0])
    n = int(attrs.get("num_elements") if attrs.get("num_elements") is not None else -1)
    if n != -1 and n != len(lst.items):
        raise ValueError(f"TensorListStack expected {n} elements, the list has {len(lst.items)}")
    return [lst.stack(rt, _shape_arg(rt, ins[1]) if len(ins) > 1 else None)]


def _gather(rt, attrs, ins):
    lst = _list(rt, ins[0])
    return [lst.stack(rt, _shape_arg(rt, ins[2]), _ints(rt, ins[1]))]


def _scatter(rt, attrs, ins):
    tensor, idx, es = ins[0], _ints(rt, ins[1]), _shape_arg(rt, ins[2])
    n = _int(rt, ins[3]) if len(ins) > 3 else -1
    n = max(n, max(idx, default=-1) + 1)
    if len(idx) != (rt.shape(tensor) or (0,))[0]:
        raise ValueError(f"{len(idx)} indices for a tensor of {rt.shape(tensor)[0]} rows")
    items = [None] * n
    for row, k in enumerate(idx):
        items[k] = _Row(tensor, row)
    return [_handle(rt, TensorList(items, _merge_shapes(es, tuple(rt.shape(tensor)[1:])),
                                   attrs.get("element_dtype") or rt.dtype(tensor)))]


def _split(rt, attrs, ins):
    tensor, es, lengths = ins[0], _shape_arg(rt, ins[1]), _ints(rt, ins[2])
    if sum(lengths) != rt.shape(tensor)[0] or min(lengths, default=0) < 0:
        raise ValueError(f"lengths {lengths} do not split {rt.shape(tensor)[0]} rows")
    items, start = [], 0
    for n in lengths:
        items.append(_Row(tensor, start, n))
        start += n
    inner = tuple(rt.shape(tensor)[1:])
    return [_handle(rt, TensorList(items, _merge_shapes(es, (-1, *inner)), attrs.get("element_dtype") or rt.dtype(tensor)))]


def _concat(rt, attrs, ins):
    lst = _list(rt, ins[0])
    elems = [lst.get(rt, k) for k in range(len(lst.items))]
    if not elems:
        es = _merge_shapes(lst.element_shape, _shape_arg(rt, ins[1]) if len(ins) > 1 else attrs.get("element_shape"))
        if es is None or -1 in es[1:]:
            raise ValueError("cannot concatenate an empty list whose element shape is not known")
        return [rt.value(np.zeros((0, *es[1:]), host_numpy_dtype(lst.dtype, np.float32))), rt.value(np.zeros(0, np.int32))]
    lengths = rt.value(np.array([rt.shape(e)[0] for e in elems], np.int32))
    if len(elems) == 1:
        return [elems[0], lengths]
    return [rt.op("ConcatV2", {"N": len(elems)}, [*elems, rt.value(np.int32(0))])[0], lengths]


def _length(rt, attrs, ins):
    return [rt.value(np.int32(len(_list(rt, ins[0]).items)))]


def _push_back(rt, attrs, ins):
    lst = _list(rt, ins[0])
    _check_shape(rt, ins[1], lst)
    return [_handle(rt, lst.copy(lst.items + [ins[1]]))]


def _pop_back(rt, attrs, ins):
    lst = _list(rt, ins[0])
    if not lst.items:
        raise ValueError("TensorListPopBack on an empty list")
    item = lst.get(rt, len(lst.items) - 1, _shape_arg(rt, ins[1]) if len(ins) > 1 else None)
    return [_handle(rt, lst.copy(lst.items[:-1])), item]


def _resize(rt, attrs, ins):
    lst, n = _list(rt, ins[0]), _int(rt, ins[1])
    if n < 0:
        raise ValueError(f"TensorListResize to {n} elements")
    return [_handle(rt, lst.copy((lst.items + [None] * n)[:n]))]


runtime_op("TensorListReserve", impl=_reserve, shape=_variant)
runtime_op("EmptyTensorList", impl=_empty, shape=_variant)
runtime_op("TensorListFromTensor", impl=_from_tensor, shape=_variant)
runtime_op("TensorListGetItem", impl=_get_item, shape=_element)
runtime_op("TensorListSetItem", impl=_set_item, shape=_variant)
runtime_op("TensorListStack", impl=_stack, shape=_element)
runtime_op("TensorListGather", impl=_gather, shape=_element)
runtime_op("TensorListScatter", "TensorListScatterV2", impl=_scatter, shape=_variant)
runtime_op("TensorListSplit", impl=_split, shape=_variant)
runtime_op("TensorListConcat", "TensorListConcatV2", impl=_concat,
           shape=lambda attrs, ins: [((), attrs.get("element_dtype") or F), ((), I)])
runtime_op("TensorListLength", impl=_length, shape=lambda attrs, ins: [((), I)])
runtime_op("TensorListPushBack", impl=_push_back, shape=_variant)
runtime_op("TensorListPopBack", impl=_pop_back, shape=lambda attrs, ins: [((), "variant")] + _element(attrs, ins))
runtime_op("TensorListResize", impl=_resize, shape=_variant)


# ------------------------------------------------------------------------------- TensorArrayV3
class TensorArray:
    """TF1's TensorArray: a mutable resource; its flow tensors only order the ops touching it."""

    def __init__(self, size: int, dtype: str, element_shape, dynamic_size: bool, clear_after_read: bool):
        self.list = TensorList([None] * size, element_shape, dtype)
        self.dynamic_size = dynamic_size
        self.clear_after_read = clear_after_read
        self.closed = False

    def _grow(self, n: int) -> None:
        if n > len(self.list.items):
            if not self.dynamic_size:
                raise ValueError(f"index {n - 1} is out of range for a TensorArray of size {len(self.list.items)}")
            self.list.items += [None] * (n - len(self.list.items))

    def write(self, rt, k: int, item) -> None:
        if self.closed:
            raise ValueError("TensorArray written after it was closed")
        self._grow(k + 1)
        _check_shape(rt, item, self.list)
        self.list.items[k] = item

    def read(self, rt, k: int):
        item = self.list.get(rt, k)
        if self.clear_after_read:
            self.list.items[k] = None
        return item


def _array(rt, t) -> TensorArray:
    return typed_obj(rt, t, TensorArray, "a TensorArray handle")


def _flow(rt):
    return rt.value(np.float32(0.0))


def _ta_new(rt, attrs, ins):
    es = attrs.get("element_shape")
    ta = TensorArray(_int(rt, ins[0]), attrs.get("dtype") or F, None if es is None else tuple(es),
                     bool(attrs.get("dynamic_size")), bool(attrs.get("clear_after_read", True)))
    return [rt.opaque(ta, "resource"), _flow(rt)]


def _ta_write(rt, attrs, ins):
    _array(rt, ins[0]).write(rt, _int(rt, ins[1]), ins[2])
    return [_flow(rt)]


def _ta_read(rt, attrs, ins):
    return [_array(rt, ins[0]).read(rt, _int(rt, ins[1]))]


def _ta_gather(rt, attrs, ins):
    ta = _array(rt, ins[0])
    es = attrs.get("element_shape")
    return [ta.list.stack(rt, None if es is None else tuple(es), _ints(rt, ins[1]))]


def _ta_scatter(rt, attrs, ins):
    ta, idx, tensor = _array(rt, ins[0]), _ints(rt, ins[1]), ins[2]
    for row, k in enumerate(idx):
        ta._grow(k + 1)
        ta.list.items[k] = _Row(tensor, row)
    return [_flow(rt)]


def _ta_concat(rt, attrs, ins):
    ta = _array(rt, ins[0])
    es = attrs.get("element_shape_except0")
    value, lengths = _concat(rt, {}, [rt.opaque(ta.list),
                                      rt.value(np.array([-1, *es], np.int32) if es else np.int32(-1))])
    return [value, lengths]


def _ta_split(rt, attrs, ins):
    ta, tensor, lengths = _array(rt, ins[0]), ins[1], _ints(rt, ins[2])
    ta._grow(len(lengths))
    start = 0
    for k, n in enumerate(lengths):
        ta.list.items[k] = _Row(tensor, start, n)
        start += n
    return [_flow(rt)]


def _ta_size(rt, attrs, ins):
    return [rt.value(np.int32(len(_array(rt, ins[0]).list.items)))]


def _ta_close(rt, attrs, ins):
    ta = _array(rt, ins[0])
    ta.closed = True
    ta.list.items = []
    return []


_FLOW = lambda attrs, ins: [((), F)]  # noqa: E731
runtime_op("TensorArrayV3", impl=_ta_new, shape=lambda attrs, ins: [((2,), "resource"), ((), F)])
runtime_op("TensorArrayWriteV3", impl=_ta_write, shape=_FLOW)
runtime_op("TensorArrayReadV3", impl=_ta_read, shape=lambda attrs, ins: [((), attrs.get("dtype") or F)])
runtime_op("TensorArrayGatherV3", impl=_ta_gather, shape=lambda attrs, ins: [((), attrs.get("dtype") or F)])
runtime_op("TensorArrayScatterV3", impl=_ta_scatter, shape=_FLOW)
runtime_op("TensorArrayConcatV3", impl=_ta_concat,
           shape=lambda attrs, ins: [((), attrs.get("dtype") or F), ((), I)])
runtime_op("TensorArraySplitV3", impl=_ta_split, shape=_FLOW)
runtime_op("TensorArraySizeV3", impl=_ta_size, shape=lambda attrs, ins: [((), I)])
runtime_op("TensorArrayCloseV3", impl=_ta_close, shape=lambda attrs, ins: [])
