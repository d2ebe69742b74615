"""The load-time graph optimizer: rewrites that make a loaded graph cheaper to run without
changing what any of its tensors holds, one small module each, run in the order of
:data:`REWRITES` by :func:`apply`.

Every rewrite replaces a node by one computing the same value under the same name (a fused
convolution named after the activation it absorbed, a Const named after the node it folded), so
consumers, signature outputs and tensor names asked for at run time all keep their meaning. Nodes
a rewrite leaves unread are dropped from the live graph between rewrites and appended unchanged
at the end, so that naming one of them (an intermediate tensor) still computes it. Derived
weights (folded filters, biases, constants) go into a new dict; the loaded node list and weights
are never modified. A rewrite that meets anything unexpected skips that spot; one that raises is
skipped as a whole (logged), so the optimizer never stops a model from loading.

Disable with ``load_graph_model(path, optimize=False)`` or the environment variable
``WGPU_RUNTIME_OPTIMIZE=0``.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

from .common import Work, source
from .fold_affine import fold_affine
from .fold_constants import fold_constants
from .fold_pad_into_conv import fold_pad_into_conv
from .fuse_activation import fuse_activation
from .fuse_elementwise import fuse_elementwise
from .fuse_residual import fuse_residual

__all__ = ["REWRITES", "apply", "enabled", "fold_pad_into_conv", "fold_constants", "fold_affine",
           "fuse_residual", "fuse_activation", "fuse_elementwise"]

logger = logging.getLogger(__name__)

# In order: constants first (they feed the others' constant checks); the affine fold runs again
# after the residual fusion, for a constant added after the residual (Keras 3's reassociated
# batch-norm offsets: (conv * s + r) + b).
REWRITES = [fold_constants, fold_pad_into_conv, fold_affine, fuse_residual, fold_affine, fuse_activation,
            fuse_elementwise]


def enabled(optimize: bool | None = None) -> bool:
    """``optimize`` when given, else the environment: on unless WGPU_RUNTIME_OPTIMIZE is 0 / off."""
    if optimize is not None:
        return bool(optimize)
    return os.environ.get("WGPU_RUNTIME_OPTIMIZE", "1").strip().lower() not in ("0", "false", "no", "off")


def apply(nodes: list, weights: Mapping, keep: Iterable[str] = ()) -> tuple[list, dict]:
    """(optimized nodes, weights): the loaded ``weights`` plus the derived ones, in a new dict.
    ``keep``: node names that must not be fused into a consumer (the signature's outputs)."""
    keep = frozenset(keep)
    originals = {n.name: n for n in nodes}
    read = {source(r) for n in nodes for r in n.inputs}
    roots = [name for name in originals if name not in read or name in keep]
    taken = set(originals)
    live, derived = list(nodes), {}
    for rewrite in REWRITES:
        work = Work(live, _Merged(weights, derived), keep, taken)
        try:
            rewrite(work)
        except Exception as e:  # noqa: BLE001 -- a rewrite's bug must not stop the model from loading
            logger.warning("graph rewrite %s failed (%s: %s); skipped", rewrite.__name__, type(e).__name__, e)
            logger.debug("traceback of the failed rewrite", exc_info=True)
            continue
        derived.update(work.new)
        live = _reachable(work.nodes, roots)
    names = {n.name for n in live}
    out = live + [n for name, n in originals.items() if name not in names]
    used = {n.name for n in live if n.op == "Const"}
    return out, {**weights, **{k: v for k, v in derived.items() if k in used}}


def _reachable(nodes: dict, roots: list[str]) -> list:
    """The nodes ``roots`` depend on (data or control), in the dict's order."""
    seen: set[str] = set()
    stack = [r for r in roots if r in nodes]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(s for s in map(source, nodes[name].inputs) if s in nodes and s not in seen)
    return [n for name, n in nodes.items() if name in seen]


class _Merged(Mapping):
    """The loaded weights and the derived ones as one read-only mapping (no copy)."""

    def __init__(self, base: Mapping, extra: Mapping):
        self.base, self.extra = base, extra

    def __getitem__(self, key):
        return self.extra[key] if key in self.extra else self.base[key]

    def __iter__(self):
        yield from self.extra
        yield from (k for k in self.base if k not in self.extra)

    def __len__(self):
        return len(set(self.base) | set(self.extra))
