"""Each op's row-wise rule (``OpDef.rows``, wgpu_runtime/ops/rows.py): whether it computes every
output row from the same input row alone, which decides whether a batch can run in chunks
(wgpu_runtime/graph/chunking.py). Checked three ways: answers for chosen nodes of each family, the
rule set on every op of the families that have rules (or deliberately left unset), and every
"row-wise" answer on the registry's cases against the numpy reference run row by row."""
import numpy as np
import pytest

from wgpu_runtime.ops import REGISTRY, Tensor, rows
from wgpu_runtime.ops.registry import NOT_ROW_WISE

# Ops of the families below left without a rule (so "not known to be row-wise"), and why.
DELIBERATE = {
    "CropAndResize": "box_ind picks the image of each box: a crop may read any row",
    "ImageProjectiveTransformV3": "not analysed (host op; a transform per row or one for all)",
    "Einsum": "which label is the batch depends on the equation: not analysed",
    "ListDiff": "data-dependent output shape",
    "LowerBound": "not analysed (searches rows of a sorted input)",
    "UpperBound": "not analysed (searches rows of a sorted input)",
    "NonMaxSuppressionV2": "selects among all boxes", "NonMaxSuppressionV3": "selects among all boxes",
    "NonMaxSuppressionV4": "selects among all boxes", "NonMaxSuppressionV5": "selects among all boxes",
    "RaggedGather": "ragged: rows of different lengths", "RaggedRange": "ragged: rows of different lengths",
    "RaggedTensorToTensor": "ragged: rows of different lengths",
    "SparseFillEmptyRows": "sparse indices address any row", "SparseReshape": "sparse indices address any row",
    "SparseSegmentMean": "segments span rows", "SparseSegmentSum": "segments span rows",
    "Unique": "data-dependent output shape", "UniqueV2": "data-dependent output shape",
    "Where": "data-dependent output shape", "_WhereCount": "counts over the whole tensor",
    "_WhereScatter": "output positions depend on every earlier row",
    "Print": "not analysed (logs its data inputs whole)",
    "ShapeN": "shape-only: folded on the host", "Const": "a weight: the planner's", "Placeholder": "fed",
    "BatchToSpaceND": "moves data between the batch and space", "SpaceToBatchND": "moves data between space and the batch",
    "GatherNd": "indices may address the batch", "ScatterNd": "indices may address the batch",
    "SparseToDense": "indices may address the batch", "TensorScatterUpdate": "indices may address the batch",
    "Fill": "its shape comes from the host: no batch input",
    "Range": "host shape arithmetic", "Rank": "shape-only", "Shape": "shape-only", "Size": "shape-only",
    "BroadcastArgs": "host shape arithmetic", "NoOp": "no outputs",
}
RULED_FAMILIES = {"elementwise", "elementwise_chain", "conv", "pool", "normalization", "image", "matmul",
                  "reduce", "dynamic", "graph_ops", "transform"}


def test_every_op_of_the_ruled_families_has_a_rule_or_is_deliberately_left_out():
    unset = {name for name, op in REGISTRY.items() if op.family in RULED_FAMILIES and op.rows is None}
    assert unset == set(DELIBERATE), (f"ops without a rows rule: {sorted(unset - set(DELIBERATE))}; "
                                      f"listed here but with a rule (or gone): {sorted(set(DELIBERATE) - unset)}")


def test_an_op_without_a_rule_is_not_row_wise():
    op = REGISTRY["Einsum"]
    assert op.rows is None
    assert op.row_wise("Einsum", {"equation": "bij,bjk->bik"}, [D(2, 3, 4), D(2, 4, 5)], [D(2, 3, 5)]) == NOT_ROW_WISE


def D(*shape):
    """A device tensor (batch-shaped: its dim 0 is the batch)."""
    return Tensor(tuple(shape), "float32")


def H(value, dtype="int32"):
    """A host tensor (a weight or a folded value)."""
    v = np.asarray(value, dtype)
    return Tensor(v.shape, dtype, value=v)


ROWS = "reads a second tensor computed from the batch"
# (op, attrs, inputs, outputs, expected answer)
EXAMPLES = [
    ("AddV2", {}, [D(2, 3), D(2, 3)], [D(2, 3)], None),
    ("AddV2", {}, [D(2, 3), H(np.ones(3), "float32")], [D(2, 3)], None),
    ("Mul", {}, [D(2,), D(2, 3)], [D(2, 3)], rows.BROADCASTS),
    ("_FusedElementwise", {}, [D(2, 4), D(2, 1)], [D(2, 4)], None),
    ("_FusedElementwise", {}, [D(2, 4), D(2,)], [D(2, 4)], rows.BROADCASTS),
    ("Conv2D", {}, [D(2, 5, 5, 3), H(np.ones((3, 3, 3, 4)), "float32")], [D(2, 5, 5, 4)], None),
    ("Conv2D", {}, [D(2, 5, 5, 3), D(2, 5, 5, 3)], [D(2, 5, 5, 4)], ROWS),
    ("Conv2DBackpropInput", {}, [H([2, 5, 5, 3]), H(np.ones((3, 3, 3, 4)), "float32"), D(2, 5, 5, 4)],
     [D(2, 5, 5, 3)], None),
    ("_FusedConv2D", {"fused_ops": ["BiasAdd", "Add"]},
     [D(2, 5, 5, 3), H(np.ones((3, 3, 3, 4)), "float32"), H(np.ones(4), "float32"), D(2, 5, 5, 4)], [D(2, 5, 5, 4)],
     None),
    ("_FusedConv2D", {"fused_ops": ["BiasAdd", "Add"]},       # a residual that is broadcast across rows
     [D(2, 5, 5, 3), H(np.ones((3, 3, 3, 4)), "float32"), H(np.ones(4), "float32"), D(2, 4)], [D(2, 5, 5, 4)], ROWS),
    ("_FusedConv2D", {"fused_ops": ["BiasAdd", "Relu"]},      # no Add: input 3 is no residual
     [D(2, 5, 5, 3), H(np.ones((3, 3, 3, 4)), "float32"), H(np.ones(4), "float32"), D(2, 5, 5, 4)], [D(2, 5, 5, 4)],
     ROWS),
    ("MaxPool", {"ksize": [1, 2, 2, 1]}, [D(2, 4, 4, 3)], [D(2, 2, 2, 3)], None),
    ("MaxPoolWithArgmax", {"include_batch_in_index": True}, [D(2, 4, 4, 3)], [D(2, 2, 2, 3)] * 2,
     "indexes across the batch"),
    ("MaxPoolWithArgmax", {}, [D(2, 4, 4, 3)], [D(2, 2, 2, 3)] * 2, None),
    ("FusedBatchNormV3", {}, [D(2, 3, 3, 4)] + [H(np.ones(4), "float32")] * 4, [D(2, 3, 3, 4)],
     "normalizes over the batch (training mode)"),
    ("FusedBatchNormV3", {"is_training": False}, [D(2, 3, 3, 4)] + [H(np.ones(4), "float32")] * 4, [D(2, 3, 3, 4)],
     None),
    ("BiasAdd", {}, [D(2, 3), D(2, 3)], [D(2, 3)], ROWS),
    ("ResizeBilinear", {}, [D(2, 4, 4, 3), H([8, 8])], [D(2, 8, 8, 3)], None),
    ("CropAndResize", {}, [D(2, 4, 4, 3), D(2, 4), D(2,), H([2, 2])], [D(2, 2, 2, 3)], NOT_ROW_WISE),
    ("MatMul", {}, [D(2, 3), H(np.ones((3, 4)), "float32")], [D(2, 4)], None),
    ("MatMul", {"transpose_a": True}, [D(2, 3), H(np.ones((2, 4)), "float32")], [D(3, 4)], "transposes the batch"),
    ("BatchMatMulV2", {}, [D(2, 3, 4), D(2, 4, 5)], [D(2, 3, 5)], None),
    ("BatchMatMulV2", {"adj_x": True}, [D(2, 3), H(np.ones((2, 4)), "float32")], [D(3, 4)], "transposes the batch"),
    ("MatrixBandPart", {}, [D(2, 3, 3), H(1), H(0)], [D(2, 3, 3)], None),
    ("MatrixBandPart", {}, [D(2, 3), H(1), H(0)], [D(2, 3)], "works across rows"),
    ("Sum", {}, [D(2, 3), H([0])], [D(3)], "reduces over the batch"),
    ("Mean", {"keep_dims": True}, [D(2, 3, 4), H([-1, 1])], [D(2, 1, 1)], None),
    ("ArgMax", {}, [D(2, 3), H(-2)], [D(3)], "reduces over the batch"),
    ("Cumsum", {}, [D(2, 3), H(1)], [D(2, 3)], None),
    ("Softmax", {}, [D(2, 3)], [D(2, 3)], None),
    ("Softmax", {}, [D(2,)], [D(2,)], "normalizes across rows"),
    ("Bincount", {}, [D(2, 3), H(5), H(np.zeros(0), "float32")], [D(5)], "counts across rows"),
    ("TopKV2", {}, [D(2, 9), H(3)], [D(2, 3), D(2, 3)], None),
    ("TopKV2", {}, [D(2,), H(1)], [D(1), D(1)], NOT_ROW_WISE),
    ("IdentityN", {}, [D(2, 3), D(2)], [D(2, 3), D(2)], None),
    ("Print", {}, [D(2, 3)], [D(2, 3)], NOT_ROW_WISE),
    ("Reshape", {}, [D(2, 3, 4), H([-1, 12])], [D(2, 12)], None),
    ("ConcatV2", {}, [D(2, 3), D(2, 4), H(1)], [D(2, 7)], None),
    ("ConcatV2", {}, [D(2, 3), D(2, 3), H(-2)], [D(4, 3)], "works along the batch"),
    ("ConcatV2", {}, [D(2, 3), D(2,), H(1)], [D(2, 4)], "mixes tensors of other ranks"),
    ("Pack", {"axis": 1}, [D(2, 3), D(2, 3)], [D(2, 2, 3)], None),
    ("Unpack", {"axis": 0}, [D(2, 3)], [D(3), D(3)], "works along the batch"),
    ("SplitV", {}, [D(2, 6), H([2, 4]), H(-1)], [D(2, 2), D(2, 4)], None),
    ("Pad", {}, [D(2, 3), H([[0, 0], [1, 1]])], [D(2, 5)], None),
    ("MirrorPad", {"mode": "REFLECT"}, [D(2, 3), H([[1, 0], [1, 1]])], [D(3, 5)], "pads the batch"),
    ("Transpose", {}, [D(2, 3, 4), H([0, 2, 1])], [D(2, 4, 3)], None),
    ("Transpose", {}, [D(2, 3), H([1, 0])], [D(3, 2)], "moves the batch"),
    ("Tile", {}, [D(2, 3), H([2, 1])], [D(4, 3)], "tiles the batch"),
    ("Slice", {}, [D(2, 3), H([0, 1]), H([-1, 2])], [D(2, 2)], None),
    ("StridedSlice", {"begin_mask": 1}, [D(2, 3), H([1, 0]), H([0, 2]), H([1, 1])], [D(2, 2)], None),
    ("StridedSlice", {"shrink_axis_mask": 1}, [D(2, 3), H([0, 0]), H([1, 3]), H([1, 1])], [D(3)], "slices the batch"),
    ("ReverseV2", {}, [D(2, 3), H([-1])], [D(2, 3)], None),
    ("Reverse", {}, [D(2, 3), H([True, False], "bool")], [D(2, 3)], "reverses the batch"),
    ("GatherV2", {}, [H(np.ones((10, 4)), "float32"), D(2, 5), H(0)], [D(2, 5, 4)], None),   # embeddings
    ("GatherV2", {}, [D(2, 6), H([1, 3]), H(1)], [D(2, 2)], None),
    ("GatherV2", {}, [D(2, 6), D(2, 3), H(1)], [D(2, 2, 3)], "gathers across rows"),
    ("BroadcastTo", {}, [D(2, 1), H([2, 4])], [D(2, 4)], None),
    ("BroadcastTo", {}, [D(2,), H([3, 2])], [D(3, 2)], rows.BROADCASTS),
    ("GatherNd", {}, [D(2, 3), H([[0, 1]])], [D(1)], NOT_ROW_WISE),
]


@pytest.mark.parametrize("name,attrs,ins,outs,expected", EXAMPLES,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(EXAMPLES)])
def test_the_rule_answers_through_the_registry(name, attrs, ins, outs, expected):
    assert REGISTRY[name].row_wise(name, attrs, ins, outs) == expected


def _planned(op, attrs, arrays):
    """The tensors the rule sees when the op runs on ``arrays`` and on their first row alone (as
    graph/chunking.py probes a graph at 2 rows and at 1): host inputs carry their values, the
    others are device tensors. None unless every device tensor has the batch (2 rows or more) as
    dim 0 in the first run and one row in the second, as chunking requires before it asks."""
    n = len(arrays)
    ins = [H(a, a.dtype.name) if op.is_host_input(i, n, attrs) else Tensor(a.shape, a.dtype.name)
           for i, a in enumerate(arrays)]
    batch = {t.shape[0] if t.shape else None for t in ins if t.value is None}
    if len(batch) != 1 or None in batch or min(batch) < 2:
        return None
    try:
        with np.errstate(all="ignore"):
            outs = op.run_reference(attrs, arrays)
            first_row = op.run_reference(attrs, _row(arrays, ins, 0))
    except Exception:        # the op rejects these inputs or a single row of them: no probe plan
        return None
    if not all(o.ndim and o.shape[0] == n_rows for runs, n_rows in ((outs, min(batch)), (first_row, 1)) for o in runs):
        return None
    return ins, outs, min(batch)


def _row(arrays, ins, r):
    return [a if t.value is not None else a[r:r + 1] for a, t in zip(arrays, ins)]


def _row_wise_cases():
    """Every registry case (op name, case index) on which its op's rule answers row-wise."""
    for name, op in sorted(REGISTRY.items()):
        if op.rows is None:
            continue
        for k, case in enumerate(op.cases):
            planned = _planned(op, case.attrs, case.materialize(seed=k))
            if planned is None:
                continue
            ins, outs, _ = planned
            if op.row_wise(name, case.attrs, ins, [Tensor(o.shape, o.dtype.name) for o in outs]) is None:
                yield pytest.param(name, k, id=f"{name}-{k}")


@pytest.mark.parametrize("name,k", list(_row_wise_cases()))
def test_a_row_wise_answer_holds_row_by_row_on_the_reference(name, k):
    """Where the rule says row-wise on an op case, the numpy reference on each row alone gives
    that row of the whole batch's outputs."""
    op, case = REGISTRY[name], REGISTRY[name].cases[k]
    arrays = case.materialize(seed=k)
    ins, outs, batch = _planned(op, case.attrs, arrays)
    for r in range(batch):
        with np.errstate(all="ignore"):
            got = op.run_reference(case.attrs, _row(arrays, ins, r))
        for whole, part in zip(outs, got):
            # the same float32 arithmetic on fewer rows: numpy may block a long sum differently
            np.testing.assert_allclose(part, whole[r:r + 1], rtol=1e-6, atol=0, equal_nan=True,
                                       err_msg=f"{name} case {k}: row {r}")
