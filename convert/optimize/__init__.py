"""Graph simplification, in the official converter's order (one small module per rewrite):

1. Grappler: pruning, constfold, arithmetic, dependency -- twice (debug_stripper first when
   stripping debug ops);
2. :mod:`.fold_batch_norms` -- inference batch norms into the conv before them;
   (ours) :mod:`.unmerge_residual_bias` and :mod:`.fold_channel_scales` -- Keras 3's batch norms
   (``conv * scale + offset``, the offset maybe merged by Grappler into a residual AddN) into
   the conv's weights and a BiasAdd, as tf_keras models get them;
3. :mod:`.normalize_bias_add` -- Add after a conv / matmul becomes BiasAdd;
4. Grappler: remap (fuses Conv2D / MatMul + BiasAdd + activation into _FusedConv2D /
   _FusedMatMul; Conv2D and MatMul are put on the CPU device for it), constfold, arithmetic,
   dependency;
5. unused control-flow placeholders dropped; :mod:`.prelu` rebuilds Prelu; :mod:`.fuse_depthwise`;
   Prelu fused into fused convs / matmuls.

Then this converter's own rewrites, for graphs TF.js and this runtime both run correctly:
:mod:`.layer_norm` (training-mode FusedBatchNormV3 from tf_keras LayerNormalization -> plain ops)
runs before step 1; after step 1, :mod:`.unroll` writes out v2 loops with a fixed trip count
and :mod:`.tensor_lists` turns their TensorList ops into slices and packs (then step 1 runs
again on the unrolled graph), and :mod:`.lower_control_flow` lowers the loops left to v1 ops
(unless ``control_flow_v2``); :mod:`.fused_guard` (a fused activation TF.js cannot run is split
out again, e.g. Tanh fused into _FusedMatMul when oneDNN's rewrites were on) runs last.
"""
from __future__ import annotations

from . import grappler
from .fold_batch_norms import fold_batch_norms
from .fold_channel_scales import fold_channel_scales
from .fuse_depthwise import fuse_depthwise
from .fused_guard import unfuse_unsupported
from .layer_norm import rewrite_training_batch_norms
from .lower_control_flow import has_v2_control_flow, lower_control_flow
from .normalize_bias_add import normalize_bias_add
from .prelu import fuse_prelu, rebuild_prelu
from .tensor_lists import rewrite_tensor_lists
from .unmerge_residual_bias import unmerge_residual_bias
from .unroll import has_loops, unroll_loops
from .util import rebuild

CPU = "/device:CPU:0"


MAX_UNROLL_ROUNDS = 8   # loops fed by loops: each round unrolls those whose length became known


def optimize(graph_def, output_nodes, signature_def, strip_debug_ops: bool = True, phase=None, notes=None,
             control_flow_v2: bool = False):
    """The optimized GraphDef. ``phase(name)``: optional context manager per step (progress);
    ``notes``: a list that collects what the rewrites did (loops unrolled or left);
    ``control_flow_v2``: keep loops that cannot be unrolled as v2 ops (else lowered to v1)."""
    import contextlib

    step = phase or (lambda name: contextlib.nullcontext())
    notes = notes if notes is not None else []
    with step("rewriting training-mode batch norms"):
        graph_def = rewrite_training_batch_norms(graph_def)
    with step("Grappler: pruning, constant folding, arithmetic"):
        graph_def = grappler.run(graph_def, output_nodes, signature_def, grappler.FIRST_PASSES,
                                 debug_stripper=strip_debug_ops)
    if has_loops(graph_def):
        with step("unrolling loops with a fixed trip count"):
            graph_def, left = _unroll(graph_def, output_nodes, signature_def, notes)
            notes += [f"loop kept: {w}" for w in left]
    if has_v2_control_flow(graph_def) and not control_flow_v2:
        with step("lowering control flow to v1 ops"):
            graph_def = lower_control_flow(graph_def, output_nodes, signature_def)
            graph_def = grappler.run(graph_def, output_nodes, signature_def, grappler.FIRST_PASSES)
    with step("folding batch norms, fusing conv/matmul with bias and activation"):
        graph_def = fold_batch_norms(graph_def)
        graph_def = unmerge_residual_bias(graph_def, keep=output_nodes)
        graph_def = fold_channel_scales(graph_def, keep=output_nodes)
        graph_def = normalize_bias_add(graph_def)
        for node in graph_def.node:
            if node.op in ("Conv2D", "MatMul"):
                node.device = CPU
        graph_def = grappler.run(graph_def, output_nodes, signature_def, grappler.FUSION_PASSES)
        graph_def = drop_unused_control_flow_inputs(graph_def)
        graph_def = rebuild_prelu(graph_def)
        graph_def = fuse_depthwise(graph_def)
        graph_def = fuse_prelu(graph_def)
        graph_def = unfuse_unsupported(graph_def)
    return graph_def


def _unroll(graph_def, output_nodes, signature_def, notes):
    """Unroll in rounds: a loop reading another loop's output learns its length once that one is
    unrolled (its TensorListStack becomes a Pack of known size). Returns (graph, loops left)."""
    left = []
    for _ in range(MAX_UNROLL_ROUNDS):
        graph_def, done, left = unroll_loops(graph_def)
        if not done:
            break
        notes += [f"unrolled {d}" for d in done]
        graph_def = grappler.run(graph_def, output_nodes, signature_def, grappler.FIRST_PASSES)
        graph_def = rewrite_tensor_lists(graph_def)
        graph_def = grappler.run(graph_def, output_nodes, signature_def, grappler.FIRST_PASSES)
        if not left:
            break
    return graph_def, left


def drop_unused_control_flow_inputs(graph_def):
    unused = [n.name for n in graph_def.node
              if n.op == "Placeholder" and n.name.startswith("unused_control_flow_input")]
    return rebuild(graph_def, skip=unused) if unused else graph_def
