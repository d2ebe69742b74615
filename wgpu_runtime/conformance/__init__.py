"""Conformance: the registry's op cases and given models, on every adapter, against references.

``python -m wgpu_runtime conformance [MODELS...] [--adapter all|SUBSTR] [--ops PATTERNS]
[--no-ops] [--precision float32|float16] [--json] [--report F.md|F.html] [--ray auto|ADDRESS [--ray-timeout S]]``

Modules, one job each: ``op_cases`` (registry cases on a device), ``reference`` (the numpy
reference executor), ``models`` (a model against its references, and its first divergent node),
``results`` (what was found, as JSON), ``report`` (table, Markdown, HTML), ``run`` (the command),
``kernel_usage`` (which kernels each op dispatches, for docs/ops.md), ``fleet`` (the same run on
every node of a Ray cluster, one column per node and adapter; Ray is imported only there). The tolerance policy lives
in wgpu_runtime/tolerance.py, shared with the unit tests; docs/conformance.md explains it.
"""
from __future__ import annotations


def add_subcommand(sub):
    p = sub.add_parser("conformance", help="run the op registry's cases and models on every adapter "
                                           "against the references")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="graph models (model.json or its folder); stored outputs next to it "
                        "(io.npz, reference.npz) are references too")
    p.add_argument("--adapter", default="all",
                   help="'all' (default: every adapter found) or a substring (vulkan, gl, ...)")
    p.add_argument("--ops", metavar="PATTERNS",
                   help="comma-separated op names or globs (e.g. 'Relu,Conv*'); default: every op")
    p.add_argument("--no-ops", action="store_true", help="run the models only")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--report", metavar="FILE", help="also write a report: FILE.md (Markdown) or FILE.html")
    from ..precision import PRECISIONS

    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="float16: the matmuls and convolutions in f16 (precision.py), held to f16's rounding "
                        "bound, on the adapters with shader-f16 (op cases only; not with --ray)")
    p.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run on every node of a Ray cluster, one column per (node, adapter): 'auto' (the cluster "
                        "Ray finds, else a local one) or a cluster address; needs pip install wgpu-runtime[ray]")
    p.add_argument("--ray-timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="with --ray: nodes that have not answered by then are reported as failing (default 1800)")

    def handler(args) -> int:
        if args.ray:
            from .fleet import main as fleet_main

            if args.precision != "float32":
                from ..exit_codes import UsageError
                raise UsageError("--precision float16 runs on this machine's adapters only, not with --ray")

            return fleet_main(args)
        from .run import main

        return main(args)
    return "conformance", handler
