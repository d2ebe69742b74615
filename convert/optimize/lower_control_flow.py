"""v2 control flow (``While``, ``If``, ``Case`` with library functions) lowered to v1 ops
(``Enter``, ``Exit``, ``Merge``, ``Switch``, ``NextIteration``, ``LoopCond``) by Grappler's
function optimizer -- what ``convert_variables_to_constants_v2(lower_control_flow=True)`` does
when freezing. The graph is frozen with v2 control flow kept so that fixed-length loops can be
unrolled first (:mod:`.unroll`); what remains is lowered here, as the official converter's
output has it, unless ``--control_flow_v2``."""
from __future__ import annotations

from . import grappler

V2_CONTROL_FLOW = ("While", "StatelessWhile", "If", "StatelessIf", "Case", "StatelessCase")


def has_v2_control_flow(graph_def) -> bool:
    return any(n.op in V2_CONTROL_FLOW for n in graph_def.node)


def lower_control_flow(graph_def, output_nodes, signature_def):
    for nodes in [graph_def.node] + [fn.node_def for fn in graph_def.library.function]:
        for n in nodes:
            if n.op in V2_CONTROL_FLOW:
                n.attr["_lower_using_switch_merge"].b = True
    return grappler.run(graph_def, output_nodes, signature_def, ["function"], aggressive_inlining=True)
