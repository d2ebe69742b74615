"""Ops whose output shapes depend on data (Where, NonMaxSuppressionV2-V5, Unique, UniqueV2,
ListDiff) and sorted-data searches (TopKV2, LowerBound, UpperBound).

Where they run:
* TopKV2 on the GPU, in TensorFlow's exact order (the k largest, ties broken by the lower
  index); its output shape is static, so it runs in static plans. Rows shorter than SELECT_MIN_N
  are ranked whole (kernels/top_k.wgsl: n^2 compares a row); longer ones first take a radix
  select (kernels/top_k_select.wgsl: a few passes over the row, e.g. a CenterNet heatmap of
  1.3M scores), then only its k candidates are ranked.
* NMS, Where, Unique, ListDiff, LowerBound/UpperBound on the host: a selection made one box at a
  time (NMS) or a compaction whose size is the question being asked (Where, Unique) needs the
  values on the host anyway. In a model they make the graph run on the dynamic executor, which
  reads back exactly these ops' inputs and uploads their (small) outputs only if a GPU op
  consumes them.

The NMS references follow TensorFlow's kernel step by step in float32 (candidates by descending
score, ties by lower index; IoU > threshold suppresses; Soft-NMS re-queues decayed scores), so
selections agree even for boxes at the threshold.
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from ..dtypes import dtype_of
from .common import B, F, I, host_value, prod
from .launch import LOOP_CAP, grid_1d
from .registry import NOT_ROW_WISE, Case, register
from .rows import from_rank
from .runtime import runtime_op
from .shapes import vec8

f32 = np.float32


def _by_reference(ref, n_inputs=None):
    """Shape rule of a host op: run the reference when the inputs are known (folding)."""
    def shape(attrs, ins):
        vals = [host_value(t, "the output shape") for t in ins]
        outs = ref(attrs, *vals)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return [(np.shape(o), dtype_of(np.asarray(o))) for o in outs]
    return shape


# ----------------------------------------------------------------------------------- TopKV2
CHUNK = 16384   # elements one invocation compares against (llvmpipe: <= LOOP_CAP loop iterations)
SELECT_MIN_N = 2048     # rows from this long take the radix select: ~2 launches a pass over the
                        # row and a rank of k candidates, where ranks cost n^2 compares a row
SELECT_BLOCK = 4096     # elements a histogram workgroup reads (kernels/top_k_select.wgsl BLOCK)
SELECT_LANES = 256      # its workgroups' size


def _topk_k(attrs, ins) -> int:
    k = int(np.reshape(host_value(ins[1], "TopKV2's k"), -1)[0])
    n = ins[0].shape[-1] if ins[0].shape else None
    if n is None:
        raise ValueError("TopKV2 needs an input of rank >= 1")
    if not 0 <= k <= n:
        raise ValueError(f"TopKV2: k = {k} must be in [0, {n}] (the last dimension)")
    return k


def _topk_shape(attrs, ins):
    k = _topk_k(attrs, ins)
    shape = ins[0].shape[:-1] + (k,)
    return [(shape, ins[0].dtype), (shape, I)]


def _topk_ref(attrs, x, k):
    k = int(np.reshape(k, -1)[0])
    order = np.argsort(-x.astype(np.float64), axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(x, order, axis=-1), order.astype(np.int32)


def _topk_lower(ctx):
    x = ctx.inputs[0]
    k = _topk_k(ctx.attrs, ctx.inputs)
    vals, idx = ctx.device_output(0), ctx.device_output(1)
    n = x.shape[-1]              # outputs not empty (ops/launch.lower_node): 1 <= k <= n
    rows = x.size // n
    select = n >= SELECT_MIN_N and k < n
    group = _topk_rows_per_group(ctx, rows, n, k, select)
    xb = ctx.device_input(0)
    for r0 in range(0, rows, group):     # rows over the binding limit: sub-ranges of `group` rows
        r = min(group, rows - r0)
        bind = [xb, vals, idx] if r == rows else \
            [xb.view(4 * r0 * n, 4 * r * n), vals.view(4 * r0 * k, 4 * r * k), idx.view(4 * r0 * k, 4 * r * k)]
        if select:
            cand_v, cand_i = _topk_select(ctx, bind[0], r, n, k)
            _topk_rank(ctx, [cand_v, *bind[1:]], r, k, k, ids=cand_i)
        else:
            _topk_rank(ctx, bind, r, n, k)


def _topk_templates(ctx) -> dict:
    dtype = ctx.inputs[0].dtype
    return {"T": ctx.wgsl_type(dtype), "KEY": "key_i32" if dtype == I else "key_f32"}


def _topk_select(ctx, xb, rows, n, k):
    """Radix select (kernels/top_k_select.wgsl): the k largest of each row, unordered, as
    (values, indices) candidates. A pass per 8-bit digit of the value key, then of the reversed
    index (ties); each pass ends early once a row's k are found."""
    nblocks = -(-n // SELECT_BLOCK)
    hist = ctx.temp(4 * rows * nblocks * SELECT_LANES, "select-histograms")
    state = ctx.temp(4 * rows * 8, "select-state")
    cand_v, cand_i = ctx.temp(4 * rows * k, "candidate-values"), ctx.temp(4 * rows * k, "candidate-indices")
    bind = [xb, hist, state, cand_v, cand_i]
    T = _topk_templates(ctx)
    index_digits = -(-(n - 1).bit_length() // 8)
    digits = [(0, s) for s in (24, 16, 8, 0)] + [(1, 8 * d) for d in reversed(range(index_digits))]
    for pass_, (word, shift) in enumerate(digits):
        params = {"n": n, "k": k, "rows": rows, "nblocks": nblocks, "shift": shift, "word": word,
                  "first": int(pass_ == 0)}
        ctx.dispatch("top_k_select.wgsl", bind, grid_1d(rows * nblocks, 1), template=T,
                     constants={"MODE": 0}, params=params)
        ctx.dispatch("top_k_select.wgsl", bind, grid_1d(rows, 1), template=T,
                     constants={"MODE": 1}, params=params)
    ctx.dispatch("top_k_select.wgsl", bind, grid_1d(rows * n, SELECT_LANES), template=T,
                 constants={"MODE": 2}, params={**params, "first": 0})
    return cand_v, cand_i


def _topk_rank(ctx, bindings, rows, n, k, ids=None):
    """Rank every element of each row against the others (kernels/top_k.wgsl), writing the k
    first in order; ``ids``: the elements' indices when the rows are select candidates."""
    nchunks = 1 if n <= CHUNK else -(-n // CHUNK)
    partial = ctx.temp(4 * rows * n * nchunks, "partial-ranks") if nchunks > 1 else \
        ctx.shared_constant(np.zeros(1, np.int32), I, "top-k-no-partial-ranks")
    consts = {"IDS": ids is not None}
    if ids is None:
        ids = ctx.shared_constant(np.zeros(1, np.int32), I, "top-k-no-ids")
    T = _topk_templates(ctx)
    bind = [*bindings, partial, ids]
    params = {"n": n, "k": k, "chunk": CHUNK, "nchunks": nchunks}
    if nchunks == 1:
        ctx.dispatch("top_k.wgsl", bind, grid_1d(rows * n), template=T, constants={"MODE": 0, **consts},
                     params={"total": rows * n, **params})
        return
    ctx.dispatch("top_k.wgsl", bind, grid_1d(rows * n * nchunks), template=T, constants={"MODE": 1, **consts},
                 params={"total": rows * n * nchunks, **params})
    ctx.dispatch("top_k.wgsl", bind, grid_1d(rows * n), template=T, constants={"MODE": 2, **consts},
                 params={"total": rows * n, **params})


def _topk_rows_per_group(ctx, rows, n, k, select) -> int:
    """Rows one launch binds: all of them when every binding fits the adapter's limit, else the
    most whose bindings fit and whose offsets keep the device's alignment (a row alone over the
    limit: all rows, and the dispatch reports the limit with the node)."""
    limit = ctx.device.max_binding_bytes
    # the widest binding per row: the input row, or its partial ranks (rows ranked in chunks)
    m = k if select else n
    per_row = max(4 * n, 4 * m * (1 if m <= CHUNK else -(-m // CHUNK)))
    if per_row * rows <= limit:
        return rows
    align = int(ctx.device.limits.get("min-storage-buffer-offset-alignment", 256))
    step = math.lcm(align // math.gcd(align, 4 * n), align // math.gcd(align, 4 * k))
    group = limit // per_row // step * step
    return group if group >= 1 else rows


def _ties(shape, seed, levels=5):
    """Values from a few levels: many equal values, so the tie order is exercised."""
    return (np.random.default_rng(seed).integers(0, levels, size=shape) / 2).astype(np.float32)


def _signed_zeros(shape, seed):
    """-0.0 and +0.0 (equal: ties by index) among a few other values."""
    levels = np.array([-0.0, 0.0, -0.0, 1.0, -1.0, 0.5], np.float32)
    return levels[np.random.default_rng(seed).integers(0, len(levels), size=shape)]


register("TopKV2", reference=_topk_ref, shape=_topk_shape, lower=_topk_lower,
         host_inputs=(1,), dtypes=(F, I), tf_outputs=None, rows=from_rank(2, NOT_ROW_WISE),
         cases=[Case([((3, 17), F), np.array(5, np.int32)], note="rows"),
                Case([_ties((2, 40), 1), np.array(12, np.int32)], note="many ties: lower index first"),
                Case([((4, 3, 9), I, -5, 5), np.array(9, np.int32)], note="int32, k = n (a full sort)"),
                Case([((7,), F), np.array(0, np.int32)], note="k = 0"),
                Case([_ties((2, CHUNK + 300), 2, levels=40), np.array(7, np.int32)],
                     note="long rows: the radix select"),
                Case([_ties((2, 5000), 3, levels=40), np.array(100, np.int32)],
                     note="radix select, the k-th value tied: index digits decide"),
                Case([((3, 2500), F), np.array(1, np.int32)], note="radix select, k = 1"),
                Case([((3, 3000), I, -50, 50), np.array(1000, np.int32)], note="radix select, int32"),
                Case([_signed_zeros((1, 40000), 4), np.array(CHUNK + 3000, np.int32)],
                     note="radix select, -0.0 tied with +0.0; candidates ranked in two chunks"),
                Case([_ties((1, CHUNK + 100), 5, levels=4), np.array(CHUNK + 100, np.int32)],
                     note="a long row sorted whole (k = n): ranks in two chunks")])


# ------------------------------------------------------------------------------------ Where
def _where_ref(attrs, x):
    return np.argwhere(np.asarray(x) != 0).astype(np.int32)


BLOCK = 256          # elements per invocation of the count and scatter passes


def _where_blocks(x) -> int:
    nblocks = -(-x.size // BLOCK)
    if nblocks >= LOOP_CAP:
        raise ValueError(f"Where on {x.size} elements: the count scan is one invocation "
                         f"(fewer than {LOOP_CAP} blocks)")
    return nblocks


def _where_params(x, nblocks) -> dict:
    dims = vec8(x.shape or (1,))
    return {"n": x.size, "nblocks": nblocks, "rank": max(1, x.rank), "dims_lo": dims[:4], "dims_hi": dims[4:]}


def _where_count_lower(ctx):
    """Counts per block, then their exclusive scan: output 0 = offsets with the total last."""
    x = ctx.inputs[0]
    counts = ctx.device_output(0)
    nblocks = _where_blocks(x)
    dummy = ctx.constant(np.zeros(1, np.int32), I, "where-no-coords")
    params = _where_params(x, nblocks)
    T = {"T": ctx.wgsl_type(x.dtype)}
    if nblocks:         # an empty input: no counts, the scan still writes the total (0)
        ctx.dispatch("where.wgsl", [x, counts, dummy], grid_1d(nblocks), params=params, template=T,
                     constants={"MODE": 0, "BLOCK": BLOCK})
    ctx.dispatch("where.wgsl", [x, counts, dummy], (1, 1, 1), params=params, template=T,
                 constants={"MODE": 1, "BLOCK": BLOCK})


def _where_scatter_lower(ctx):
    x, offsets = ctx.inputs[0], ctx.inputs[1]
    nblocks = _where_blocks(x)
    ctx.dispatch("where.wgsl", [x, offsets, ctx.device_output(0)], grid_1d(nblocks), params=_where_params(x, nblocks),
                 template={"T": ctx.wgsl_type(x.dtype)}, constants={"MODE": 2, "BLOCK": BLOCK})


# Where's two GPU passes (internal ops, like the converter's fused ops: never in a model file)
def _where_count_ref(attrs, x):
    flat = np.reshape(x, -1)
    counts = [np.count_nonzero(flat[k:k + BLOCK]) for k in range(0, flat.size, BLOCK)]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)     # exclusive scan, then the total


register("_WhereCount", reference=_where_count_ref,
         shape=lambda attrs, ins: [((-(-ins[0].size // BLOCK) + 1,), I)], lower=_where_count_lower, dtypes=(B, F, I),
         cases=[Case([((40, 30), B)], note="5 blocks"), Case([((7,), F, -1, 1)]), Case([np.zeros((0, 3), bool)])])
register("_WhereScatter", reference=lambda attrs, x, offsets: _where_ref(attrs, x),
         shape=lambda attrs, ins: [((int(attrs.get("count") or 0), max(1, ins[0].rank)), I)],
         lower=_where_scatter_lower, dtypes=(B, F, I))


def _where(rt, attrs, ins):
    """On the GPU when the input is there: count, read back the total alone (4 bytes), then
    write the coordinates; on the host when it is already there."""
    x = ins[0]
    if not rt.on_device(x) or rt.shape(x) == ():
        return [rt.value(_where_ref(attrs, rt.host(x)))]
    offsets = rt.op("_WhereCount", {}, [x])[0]
    total = int(np.reshape(rt.host(rt.op("Slice", {}, [offsets, rt.value(np.array([rt.shape(offsets)[0] - 1], np.int32)),
                                                        rt.value(np.array([1], np.int32))])[0]), -1)[0])
    return rt.op("_WhereScatter", {"count": total}, [x, offsets])


runtime_op("Where", impl=_where, shape=_by_reference(_where_ref), dtypes=(B, F, I),
           cases=[Case([((3, 4), B)]), Case([((2, 3, 2), F, -1, 1)], note="numeric: non-zeros"),
                  Case([np.zeros((5,), bool)], note="none"),
                  Case([((70, 9), B)], note="several blocks")])


# ------------------------------------------------------------------------- NonMaxSuppression
def _std_min(a, b):
    return np.where(b < a, b, a)        # std::min: a unless b < a (a NaN stays; numpy's propagates)


def _std_max(a, b):
    return np.where(a < b, b, a)        # std::max: a unless a < b


def _corners(boxes):
    """Each box's (ymin, xmin, ymax, xmax), whichever order its corners come in, and its area,
    in float32 as TensorFlow's IOU() computes them."""
    y0, y1 = _std_min(boxes[:, 0], boxes[:, 2]), _std_max(boxes[:, 0], boxes[:, 2])
    x0, x1 = _std_min(boxes[:, 1], boxes[:, 3]), _std_max(boxes[:, 1], boxes[:, 3])
    with np.errstate(invalid="ignore", over="ignore"):      # NaN / inf corners: their area is not finite
        return y0, x0, y1, x1, (y1 - y0) * (x1 - x0)


def _ious(corners, i, js, finite: bool = False) -> np.ndarray:
    """TensorFlow's IOU() of box(es) ``i`` with each box of ``js`` (broadcasting: an index array
    of shape [n, 1] against one of [m] gives [n, m]), element by element in float32 with its
    roundings and its std::min / std::max (numpy's, 3x faster, where no corner is NaN:
    ``finite``); empty boxes overlap nothing. Symmetric in i and j, as TensorFlow's."""
    y0, x0, y1, x1, area = corners
    lo, hi = (np.minimum, np.maximum) if finite else (_std_min, _std_max)
    empty = (area[i] <= 0) | (area[js] <= 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ih = hi(lo(y1[i], y1[js]) - hi(y0[i], y0[js]), f32(0.0))
        iw = hi(lo(x1[i], x1[js]) - hi(x0[i], x0[js]), f32(0.0))
        inter = ih * iw
        iou = inter / (area[i] + area[js] - inter)
    return np.where(empty, f32(0.0), iou).astype(f32)


def nms(boxes, scores, max_output, iou_threshold, score_threshold=-np.inf, soft_nms_sigma=0.0):
    """TensorFlow's DoNonMaxSuppressionOp: (selected indices, their (decayed) scores)."""
    boxes = np.asarray(boxes, f32).reshape(-1, 4)
    scores = np.asarray(scores, f32).reshape(-1)
    iou_threshold, score_threshold = f32(iou_threshold), f32(score_threshold)
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"{boxes.shape[0]} boxes but {scores.shape[0]} scores")
    corners = _corners(boxes)
    if soft_nms_sigma <= 0 and (fast := _greedy_nms(corners, scores, max_output, iou_threshold,
                                                     score_threshold)) is not None:
        return fast
    return _nms_steps(corners, scores, max_output, iou_threshold, score_threshold, soft_nms_sigma)


def _nms_steps(corners, scores, max_output, iou_threshold, score_threshold, soft_nms_sigma):
    """TensorFlow's loop as it is: candidates from a heap (best first, ties by lower index), each
    checked against the boxes selected since it was queued, the latest first; a soft-NMS
    candidate whose score decayed goes back into the heap."""
    soft = soft_nms_sigma > 0
    scale = f32(-0.5 / soft_nms_sigma) if soft else f32(0.0)
    heap = [(-s, i, 0) for i, s in enumerate(scores) if s > score_threshold]
    heapq.heapify(heap)
    selected, selected_scores = [], []
    while len(selected) < max_output and heap:
        neg, i, begin = heapq.heappop(heap)
        score = original = f32(-neg)
        hard = False
        for sim in _ious(corners, i, np.array(selected[begin:], np.int64))[::-1]:
            weight = f32(np.exp(f32(scale * sim * sim))) if sim <= iou_threshold else f32(0.0)
            score = f32(score * weight)
            if not soft and sim > iou_threshold:
                hard = True
                break
            if score <= score_threshold:
                break
        if hard:
            continue
        if score == original:
            selected.append(i)
            selected_scores.append(score)
        elif score > score_threshold:
            heapq.heappush(heap, (-score, i, len(selected)))
    return np.array(selected, np.int32), np.array(selected_scores, f32)


GREEDY_BLOCK = 256      # candidates whose overlaps _greedy_nms computes at once


def _greedy_nms(corners, scores, max_output, iou_threshold, score_threshold):
    """Hard NMS at numpy speed: a box is selected when no box selected before it (by score, ties
    by lower index) overlaps it by more than the threshold, which is what TensorFlow's loop
    selects. Candidates go in blocks: their overlaps with the boxes selected so far and with each
    other are computed at once, then the block is decided in order from those. None when a box's
    area is not finite (NaN or overflowing corners): an overlap may be NaN then, and TensorFlow's
    loop does something else with it (the candidate's score drops to 0 and it may be queued
    again), which _nms_steps follows. Finite areas give finite overlaps."""
    if not np.isfinite(corners[4]).all():
        return None
    cand = np.flatnonzero(scores > score_threshold)
    order = cand[np.lexsort((cand, -scores[cand]))]
    selected: list[int] = []
    for start in range(0, order.size, GREEDY_BLOCK):
        if len(selected) >= max_output:
            break
        block = order[start:start + GREEDY_BLOCK]
        alive = np.ones(block.size, bool)
        if selected:
            alive = ~(_ious(corners, block[:, None], np.array(selected), finite=True) > iou_threshold).any(axis=1)
        overlaps = _ious(corners, block[:, None], block, finite=True) > iou_threshold
        for k in range(block.size):
            if alive[k]:
                selected.append(int(block[k]))
                if len(selected) >= max_output:
                    break
                alive[k + 1:] &= ~overlaps[k, k + 1:]
    sel = np.array(selected, np.int32)
    return sel, scores[sel]


def _scalar(v, kind=float):
    return kind(np.reshape(v, -1)[0])


def _pad(a, n):
    return np.concatenate([a, np.zeros(n - a.size, a.dtype)])


def _nms_v2(attrs, boxes, scores, max_out, iou):
    return nms(boxes, scores, _scalar(max_out, int), _scalar(iou))[0]


def _nms_v3(attrs, boxes, scores, max_out, iou, score_thr):
    return nms(boxes, scores, _scalar(max_out, int), _scalar(iou), _scalar(score_thr))[0]


def _nms_v4(attrs, boxes, scores, max_out, iou, score_thr):
    n = _scalar(max_out, int)
    sel = nms(boxes, scores, n, _scalar(iou), _scalar(score_thr))[0]
    valid = np.int32(sel.size)
    return (_pad(sel, n) if attrs.get("pad_to_max_output_size") else sel), valid


def _nms_v5(attrs, boxes, scores, max_out, iou, score_thr, sigma):
    n = _scalar(max_out, int)
    sel, sc = nms(boxes, scores, n, _scalar(iou), _scalar(score_thr), _scalar(sigma))
    valid = np.int32(sel.size)
    if attrs.get("pad_to_max_output_size"):
        sel, sc = _pad(sel, n), _pad(sc, n)
    return sel, sc, valid


def _boxes(n, seed):
    """Boxes on a coarse grid (many equal IoUs and exact areas) with a few repeated scores."""
    rng = np.random.default_rng(seed)
    lo = rng.integers(0, 6, size=(n, 2)) / 8
    size = rng.integers(1, 5, size=(n, 2)) / 8
    boxes = np.concatenate([lo, lo + size], axis=1).astype(np.float32)
    scores = (rng.integers(0, 6, size=n) / 8 + 0.1).astype(np.float32)
    return boxes, scores


def _nms_case(version, n, seed, max_out, iou, score=None, sigma=None, note="", nan_box=None, **attrs):
    boxes, scores = _boxes(n, seed)
    if nan_box is not None:
        boxes[nan_box, 1] = np.nan
    ins = [boxes, scores, np.array(max_out, np.int32), np.array(iou, np.float32)]
    if score is not None:
        ins.append(np.array(score, np.float32))
    if sigma is not None:
        ins.append(np.array(sigma, np.float32))
    return Case(ins, attrs=attrs, note=note)


register("NonMaxSuppressionV2", reference=_nms_v2, shape=_by_reference(_nms_v2),
         cases=[_nms_case(2, 30, 1, 10, 0.5, note="ties in scores and IoUs")])
register("NonMaxSuppressionV3", reference=_nms_v3, shape=_by_reference(_nms_v3),
         cases=[_nms_case(3, 40, 2, 20, 0.4, 0.3, note="score threshold"),
                _nms_case(3, 40, 3, 5, 0.0, 0.0, note="IoU threshold 0: disjoint boxes only"),
                _nms_case(3, 10, 4, 20, 1.0, -1.0, note="IoU threshold 1: nothing suppressed"),
                _nms_case(3, 700, 9, 400, 0.5, 0.2, note="more candidates than a greedy block"),
                _nms_case(3, 40, 10, 30, 0.5, -1.0, nan_box=4,
                          note="a NaN corner: its overlaps are NaN, TensorFlow's loop requeues it")])
register("NonMaxSuppressionV4", reference=_nms_v4, shape=_by_reference(_nms_v4),
         cases=[_nms_case(4, 40, 5, 25, 0.5, 0.2, pad_to_max_output_size=True, note="padded"),
                _nms_case(4, 40, 6, 25, 0.5, 0.2, pad_to_max_output_size=False, note="not padded")])
register("NonMaxSuppressionV5", reference=_nms_v5, shape=_by_reference(_nms_v5),
         cases=[_nms_case(5, 30, 7, 12, 0.5, 0.1, 0.0, pad_to_max_output_size=True, note="hard NMS, padded"),
                _nms_case(5, 30, 8, 12, 0.6, 0.2, 0.5, pad_to_max_output_size=False, note="Soft-NMS")])


# ------------------------------------------------------------------- Unique, ListDiff, bounds
def _unique_ref(attrs, x, axis=None):
    x = np.asarray(x)
    if axis is None:
        _, first, inverse = np.unique(x.reshape(-1), return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return x.reshape(-1)[first[order]], rank[inverse].astype(np.int32)
    ax = int(np.reshape(axis, -1)[0]) % max(x.ndim, 1)
    moved = np.moveaxis(x, ax, 0)
    flat = moved.reshape(moved.shape[0], -1)
    _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return np.moveaxis(moved[first[order]], 0, ax), rank[np.reshape(inverse, -1)].astype(np.int32)


register("Unique", reference=lambda attrs, x: _unique_ref(attrs, x),
         shape=_by_reference(lambda attrs, x: _unique_ref(attrs, x)), dtypes=(F, I),
         cases=[Case([((20,), I, 0, 6)]), Case([np.array([2.5, -1, 2.5, 0, -1, 7], np.float32)], note="float")])
register("UniqueV2", reference=_unique_ref, shape=_by_reference(_unique_ref), dtypes=(F, I),
         cases=[Case([((12,), I, 0, 4), np.array([0], np.int32)]),
                Case([np.array([[1, 2], [3, 4], [1, 2], [3, 5]], np.int32), np.array([0], np.int32)], note="rows"),
                Case([np.array([[1, 1, 2], [3, 3, 4]], np.int32), np.array([1], np.int32)], note="columns")])


def _listdiff_ref(attrs, x, y):
    keep = ~np.isin(x, y)
    return x[keep], np.flatnonzero(keep).astype(np.int32)


register("ListDiff", reference=_listdiff_ref, shape=_by_reference(_listdiff_ref), dtypes=(F, I),
         cases=[Case([((15,), I, 0, 8), ((6,), I, 0, 8)])])


def _bound(side):
    def ref(attrs, sorted_inputs, values):
        out = np.stack([np.searchsorted(s, v, side=side) for s, v in
                        zip(sorted_inputs.reshape(-1, sorted_inputs.shape[-1]), values.reshape(-1, values.shape[-1]))])
        return out.reshape(values.shape).astype(np.int32)
    return ref


def _sorted_case(rows, n, m, seed, dtype):
    rng = np.random.default_rng(seed)
    s = np.sort(rng.integers(-4, 5, size=(rows, n)), axis=-1).astype(dtype)
    return Case([s, rng.integers(-5, 6, size=(rows, m)).astype(dtype)], note="duplicates and values outside")


for _name, _side in (("LowerBound", "left"), ("UpperBound", "right")):
    register(_name, reference=_bound(_side), shape=lambda attrs, ins: [(ins[1].shape, I)],
             dtypes=(F, I), cases=[_sorted_case(3, 10, 7, 1, np.float32), _sorted_case(2, 6, 9, 2, np.int32)])


# ------------------------------------------------------------------ sparse tensors (host)
def _fill_empty_rows(attrs, indices, values, dense_shape, default):
    indices = np.asarray(indices).reshape(-1, np.size(dense_shape))
    n_rows = int(np.reshape(dense_shape, -1)[0]) if np.size(dense_shape) else 0
    rows = indices[:, 0] if indices.size else np.zeros(0, np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"a row index is outside [0, {n_rows})")
    counts = np.bincount(rows, minlength=n_rows) if rows.size else np.zeros(n_rows, np.int64)
    empty = counts == 0
    per_row = np.where(empty, 1, counts)
    start = np.concatenate([[0], np.cumsum(per_row)[:-1]]).astype(np.int64)
    total = int(per_row.sum())
    out_idx = np.zeros((total, indices.shape[1]), np.int32)
    out_val = np.full(total, np.reshape(default, -1)[0], np.asarray(values).dtype)
    for r in np.flatnonzero(empty):
        out_idx[start[r], 0] = r
    reverse = np.zeros(len(rows), np.int32)
    fill = start.copy()
    for i, r in enumerate(rows):                  # input order kept within a row, as TF does
        out_idx[fill[r]] = indices[i]
        out_val[fill[r]] = values[i]
        reverse[i] = fill[r]
        fill[r] += 1
    return out_idx, out_val, empty, reverse


register("SparseFillEmptyRows", reference=_fill_empty_rows, shape=_by_reference(_fill_empty_rows),
         dtypes=(F, I),
         cases=[Case([np.array([[0, 1], [0, 3], [2, 0], [4, 2]], np.int64), np.array([1.5, 2, 3, 4], np.float32),
                      np.array([6, 5], np.int64), np.array(-1, np.float32)]),
                Case([np.zeros((0, 2), np.int64), np.zeros(0, np.int32), np.array([3, 2], np.int64),
                      np.array(7, np.int32)], note="all rows empty")])


def _sparse_reshape(attrs, indices, shape, new_shape):
    shape = [int(d) for d in np.reshape(shape, -1)]
    new = [int(d) for d in np.reshape(new_shape, -1)]
    total = prod(shape)
    if new.count(-1) > 1:
        raise ValueError("new_shape may hold one -1")
    if -1 in new:
        known = prod([d for d in new if d != -1])
        new[new.index(-1)] = total // known if known else 0
    if prod(new) != total:
        raise ValueError(f"cannot reshape a sparse tensor of shape {shape} to {new}")
    indices = np.asarray(indices, np.int64).reshape(-1, len(shape))
    flat = indices @ np.array([prod(shape[k + 1:]) for k in range(len(shape))], np.int64) \
        if indices.size else np.zeros(len(indices), np.int64)
    out = np.stack(np.unravel_index(flat, new), axis=1) if len(indices) else np.zeros((0, len(new)), np.int64)
    return out.astype(np.int32), np.array(new, np.int32)


register("SparseReshape", reference=_sparse_reshape, shape=_by_reference(_sparse_reshape),
         dtypes=(I,),
         cases=[Case([np.array([[0, 1, 1], [1, 0, 2], [1, 2, 3]], np.int64), np.array([2, 3, 4], np.int64),
                      np.array([4, -1], np.int64)])])


def _segment(mean):
    def ref(attrs, data, indices, segment_ids):
        seg = np.asarray(segment_ids).reshape(-1)
        n = int(seg.max()) + 1 if seg.size else 0
        rows = np.asarray(data)[np.asarray(indices).reshape(-1)].astype(np.float64)
        out = np.zeros((n,) + data.shape[1:])
        np.add.at(out, seg, rows)
        if mean:
            count = np.bincount(seg, minlength=n).reshape((n,) + (1,) * (data.ndim - 1))
            out = out / np.maximum(count, 1)
        return out.astype(data.dtype)
    return ref


for _name, _mean in (("SparseSegmentSum", False), ("SparseSegmentMean", True)):
    register(_name, reference=_segment(_mean), shape=_by_reference(_segment(_mean)),
             dtypes=(F,) if _mean else (F, I),
             cases=[Case([((5, 3), F), np.array([0, 2, 4, 1, 1], np.int32), np.array([0, 0, 1, 3, 3], np.int32)],
                         note="segment 2 empty")])


# ------------------------------------------------------------------ ragged tensors (host)
def _ragged_range(attrs, starts, limits, deltas):
    s, l, d = np.broadcast_arrays(np.reshape(starts, -1) if np.ndim(starts) else starts,
                                  np.reshape(limits, -1) if np.ndim(limits) else limits,
                                  np.reshape(deltas, -1) if np.ndim(deltas) else deltas)
    s, l, d = (np.atleast_1d(v) for v in (s, l, d))
    pieces = []
    for a, b, c in zip(s, l, d):
        if c == 0:
            raise ValueError("RaggedRange: delta must not be 0")
        pieces.append(np.arange(a, b, c, dtype=np.asarray(starts).dtype))
    splits = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int32)
    values = np.concatenate(pieces) if pieces else np.zeros(0, np.asarray(starts).dtype)
    return splits, values.astype(np.asarray(starts).dtype)


register("RaggedRange", reference=_ragged_range, shape=_by_reference(_ragged_range), dtypes=(F, I),
         cases=[Case([np.array([0, 5, 8], np.int32), np.array([3, 5, 20], np.int32), np.array([1, 1, 4], np.int32)]),
                Case([np.array(1.5, np.float32), np.array([3, 4], np.float32), np.array(0.5, np.float32)],
                     note="broadcast scalars")])


def _ragged_gather(attrs, *xs):
    """TF's RaggedGather: inputs are PARAMS_RAGGED_RANK splits, the dense values, the indices;
    outputs: OUTPUT_RAGGED_RANK splits (the indices' outer dims first), then the values."""
    splits, values, indices = list(xs[:-2]), np.asarray(xs[-2]), np.asarray(xs[-1])
    flat = indices.reshape(-1)
    out_splits = [[0] for _ in splits]
    ranges = [(int(i), int(i) + 1) for i in flat]
    for level, s in enumerate(splits):
        nxt = []
        for a, b in ranges:
            for r in range(a, b):
                out_splits[level].append(out_splits[level][-1] + int(s[r + 1] - s[r]))
            nxt.append((int(s[a]), int(s[b])))
        ranges = [(a, b) for a, b in nxt]
        if level + 1 < len(splits):
            ranges = [(a, b) for a, b in ranges]
    rows = [values[a:b] for a, b in ranges]
    dense = np.concatenate(rows) if rows else values[:0]
    outer = []
    for j in range(indices.ndim - 1):
        n_rows = prod(indices.shape[:j + 1])
        outer.append(np.arange(n_rows + 1, dtype=np.int32) * indices.shape[j + 1])
    return (*outer, *(np.array(s, np.int32) for s in out_splits), dense)


register("RaggedGather", reference=_ragged_gather, shape=_by_reference(_ragged_gather),
         dtypes=(F, I))     # no cases: TF returns (list, tensor); tests/test_dynamic_models.py checks it


def _partition_rows(kind, tensor, n_parent):
    """A row partition as (value_rowids, nrows)."""
    t = np.asarray(tensor).reshape(-1)
    if kind == "ROW_SPLITS":
        return np.repeat(np.arange(len(t) - 1), np.diff(t)), len(t) - 1
    if kind == "VALUE_ROWIDS":
        return t, n_parent
    raise ValueError(f"row partition type {kind!r} is not supported")


def _ragged_to_tensor(attrs, shape, values, default, *partitions):
    kinds = [k.decode() if isinstance(k, bytes) else str(k) for k in attrs.get("row_partition_types") or []]
    values, parts = np.asarray(values), list(partitions)
    nrows = None
    if kinds and kinds[0] == "FIRST_DIM_SIZE":
        nrows, kinds, parts = int(np.reshape(parts[0], -1)[0]), kinds[1:], parts[1:]
    coords = None                                            # per value: its ragged coordinates
    n_parent = nrows
    levels = []
    for kind, t in zip(kinds, parts):
        rowids, n = _partition_rows(kind, t, n_parent)
        levels.append((rowids, n))
        n_parent = len(rowids)
    # walk from the outermost level: each element's (row, position-in-row)
    pos = [np.arange(levels[0][1])] if levels else []
    dims = [levels[0][1]] if levels else []
    for rowids, n in levels:
        col = np.zeros(len(rowids), np.int64)
        if len(rowids):
            starts = np.concatenate([[0], np.flatnonzero(np.diff(rowids)) + 1])
            for a, b in zip(starts, list(starts[1:]) + [len(rowids)]):
                col[a:b] = np.arange(b - a)
        pos = [p[rowids] for p in pos] + [col]
        dims.append(int(col.max()) + 1 if col.size else 0)
    coords = np.stack(pos, axis=1) if pos else np.zeros((len(values), 0), np.int64)
    inner = values.shape[1:]
    want = np.reshape(shape, -1)
    if want.size and np.ndim(shape) > 0:
        dims = [int(w) if w >= 0 else d for w, d in zip(want, dims + list(inner))][:len(dims)]
    out = np.full(tuple(dims) + inner, np.reshape(default, -1)[0] if np.size(default) == 1 else 0, values.dtype)
    if np.size(default) > 1:
        out[...] = default
    keep = np.all(coords < np.array(dims), axis=1) if len(coords) else np.zeros(0, bool)
    for c, v in zip(coords[keep], values[keep]):
        out[tuple(c)] = v
    return out


register("RaggedTensorToTensor", reference=_ragged_to_tensor,
         shape=_by_reference(_ragged_to_tensor), dtypes=(F, I),
         cases=[Case([np.array([-1, -1], np.int32), np.array([1, 2, 3, 4, 5], np.float32), np.array(0, np.float32),
                      np.array([0, 2, 2, 5], np.int32)], attrs={"row_partition_types": ["ROW_SPLITS"]},
                     tf_inputs=[0, 1, 2, [3]], note="row splits"),
                Case([np.array([4, 2], np.int32), np.array([1, 2, 3, 4], np.int32), np.array(-1, np.int32),
                      np.array(3, np.int32), np.array([0, 0, 2, 2], np.int32)],
                     attrs={"row_partition_types": ["FIRST_DIM_SIZE", "VALUE_ROWIDS"]},
                     tf_inputs=[0, 1, 2, [3, 4]], note="value rowids, padded and truncated shape")])
