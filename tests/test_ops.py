"""Every registry op case, twice:
  * the op's numpy reference against TensorFlow's raw op (the reference is the oracle elsewhere,
    so it is itself checked against TF), and
  * the op on each adapter against the numpy reference.
Tolerances: wgpu_runtime/tolerance.py, the policy the conformance suite uses too
(docs/conformance.md): exact for int32/bool; for float32 the op's (or case's) stated tolerance in
ULPs of max(1, |ref|), grown to 4 ULP x sqrt(K) for ops summing K terms per output.
"""
import inspect

import numpy as np
import pytest

from wgpu_runtime.graph.single_op import run_op
from wgpu_runtime.ops import REGISTRY
from wgpu_runtime.tolerance import assert_close, case_tolerance  # test_ops_conv imports assert_close

CASES = [(name, i) for name, op in sorted(REGISTRY.items()) for i in range(len(op.cases))]
IDS = [f"{n}-{i}" for n, i in CASES]


@pytest.mark.parametrize("name,idx", CASES, ids=IDS)
def test_op_on_gpu_matches_reference(device, name, idx):
    op = REGISTRY[name]
    case = op.cases[idx]
    inputs = case.materialize(seed=idx)
    want = op.run_reference(case.attrs, inputs)
    got = run_op(name, case.attrs, inputs, device, n_outputs=len(want))
    for k, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, case_tolerance(op, case, inputs, want),
                     f"{name} case {idx} ({case.note}) output {k} on {device.backend}")


def _tf_call(tf, name, case, inputs):
    fn = getattr(tf.raw_ops, name)
    params = [p for p in inspect.signature(fn).parameters if p != "name"]
    groups = case.tf_inputs or list(range(len(inputs)))   # an int: one tensor; a list: a list input
    args = {}
    for pname, g in zip(params, groups):
        args[pname] = [tf.constant(inputs[i]) for i in g] if isinstance(g, list) else tf.constant(inputs[g])
    for k, v in case.attrs.items():
        if k in params and k not in args:
            args[k] = v
    out = fn(**args)
    return [o.numpy() for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("name,idx", CASES, ids=IDS)
def test_reference_matches_tensorflow(name, idx):
    tf = pytest.importorskip("tensorflow")
    if not hasattr(tf.raw_ops, name):
        pytest.skip(f"{name} is not a TF raw op (a converter/TF.js fused op); its reference is "
                    "checked through converted models")
    op = REGISTRY[name]
    case = op.cases[idx]
    inputs = case.materialize(seed=idx)
    want = _tf_call(tf, name, case, inputs)
    got = op.run_reference(case.attrs, inputs)
    for k, (g, w) in enumerate(zip(got[:op.tf_outputs], want)):
        if w.dtype == np.float32 or w.dtype.kind in "biu" or w.dtype == np.bool_:
            assert_close(g, w, 2e-6, f"reference {name} case {idx} ({case.note}) output {k} vs TF")
