"""A node whose data inputs are all constants becomes a Const holding its value (computed with the
op's numpy reference, as the planner would at plan time): no dispatch in any execution path
(the dynamic executor too) and a smaller graph. Not v1 control flow (its frames are not values),
not ops run for a side effect, not constants under a control edge. Results over MAX_BYTES stay computed at run time,
so that folding never blows up the weights."""
from __future__ import annotations

import logging

import numpy as np

from ...dtypes import dtype_of, host_array
from ...ops import registry
from ...ops.registry import Tensor
from .common import Work, data_inputs, source

logger = logging.getLogger(__name__)

MAX_BYTES = 16 << 20
_NEVER = {"control"}                        # v1 control flow (Enter, Merge, Switch...): frames, not values
_SIDE_EFFECTS = {"Print", "PrintV2", "Assert"}


def fold_constants(work: Work) -> None:
    changed = True
    while changed:        # a folded node may make its consumers foldable
        changed = False
        for node in work.list():
            if node.op in ("Const", "Placeholder") or node.name in work.keep:
                continue
            value = _fold(work, node)
            if value is not None:
                work.set_const(node.name, value)
                changed = True


def _fold(work: Work, node):
    op = registry.get(node.op)
    ins = data_inputs(node)
    if (op is None or op.runtime is not None or op.family in _NEVER or node.op in _SIDE_EFFECTS or not ins
            or len(ins) != len(node.inputs) or not work.only_output_0_read(node.name)):
        return None
    if any(work.nodes[source(r)].inputs for r in ins):      # a Const under a control edge (a v1 loop frame)
        return None
    values = [work.value(r) for r in ins]
    if any(v is None for v in values):
        return None
    try:
        specs = op.shape(node.attrs, [Tensor(tuple(v.shape), dtype_of(v), value=v) for v in values])
        if len(specs) != 1 or 4 * int(np.prod(specs[0][0], dtype=np.int64)) > MAX_BYTES:
            return None      # several outputs, or too big (known before computing it)
        with np.errstate(all="ignore"):
            out = op.run_reference(node.attrs, values)
    except Exception as e:      # an input the op rejects: left for run time, which reports it
        logger.debug("not folding %s (%s): %s", node.name, node.op, e)
        return None
    if len(out) != 1:
        return None
    v = np.asarray(out[0])
    if v.dtype.kind not in "biuf" or v.nbytes > MAX_BYTES:
        return None
    return host_array(v)
