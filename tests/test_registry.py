"""The op registry's families: an op's family is the module of wgpu_runtime/ops that registers it
(it keys the tolerance policy and groups docs/ops.md), so every family names a module of
wgpu_runtime/ops and an op's code lives in its family's module."""
import inspect
import pkgutil

import wgpu_runtime.ops
from wgpu_runtime.ops import REGISTRY
from wgpu_runtime.tolerance import FAMILY_POLICIES

OPS_PACKAGE = wgpu_runtime.ops.__name__
MODULES = {m.name for m in pkgutil.iter_modules(wgpu_runtime.ops.__path__)}


def _ops():
    """Each OpDef once (an op registered under several names is one OpDef)."""
    return list({id(op): op for op in REGISTRY.values()}.values())


def _ops_module(fn) -> str | None:
    """The module of wgpu_runtime/ops (its last name) defining the function ``fn``; None when ``fn``
    is not a Python function of ops (a numpy ufunc...)."""
    module = getattr(fn, "__module__", "") if inspect.isfunction(fn) else ""
    return module.rsplit(".", 1)[1] if module.startswith(OPS_PACKAGE + ".") else None


def _defined_in(fn, module: str) -> bool:
    """Whether ``fn`` -- or a function it wraps (a closure made by a shared factory such as
    runtime_op's reference or conv.nhwc_reference) -- is defined in ops/<module>.py."""
    if _ops_module(fn) == module:
        return True
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            inner = cell.cell_contents
        except ValueError:                          # an empty cell
            continue
        if inner is not fn and inspect.isfunction(inner) and _defined_in(inner, module):
            return True
    return False


def test_every_family_is_a_module_of_ops():
    families = {op.family for op in _ops()}
    assert families <= MODULES, f"families that are no module of wgpu_runtime/ops: {sorted(families - MODULES)}"
    assert "misc" not in families and "misc" not in MODULES


def test_family_is_the_registering_module():
    """Each op's family is the module its reference (or the implementation the reference wraps)
    comes from: the row lives in its family's module."""
    wrong = []
    for op in _ops():
        if _ops_module(op.reference) is None:       # e.g. a numpy function used as is
            continue
        if not _defined_in(op.reference, op.family):
            wrong.append(f"{op.names[0]}: family {op.family}, reference from ops/{_ops_module(op.reference)}.py")
        if op.runtime is not None and _ops_module(op.runtime) not in (None, op.family):
            wrong.append(f"{op.names[0]}: family {op.family}, runtime implementation from "
                         f"ops/{_ops_module(op.runtime)}.py")
    assert not wrong, "\n".join(wrong)


def test_tolerance_policies_are_keyed_by_family_modules():
    families = {op.family for op in _ops()}
    assert set(FAMILY_POLICIES) <= MODULES, f"policies for no ops module: {sorted(set(FAMILY_POLICIES) - MODULES)}"
    assert set(FAMILY_POLICIES) <= families, f"policies for families with no op: {sorted(set(FAMILY_POLICIES) - families)}"


def test_accumulating_ops_get_their_family_policy():
    """Ops that sum many terms, registered with their families, get the accumulation policy."""
    for name, family in (("EuclideanNorm", "reduce"), ("Cumsum", "reduce"), ("Einsum", "matmul"),
                         ("Conv3D", "conv"), ("MaxPool3D", "pool"), ("LRN", "normalization")):
        assert REGISTRY[name].family == family, name
