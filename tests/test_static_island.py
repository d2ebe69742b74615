"""The static island of a dynamic graph (wgpu_runtime/graph/dynamic/island.py): the part in
front of the control flow runs as one static plan, the rest node by node, with the same results.

Oracles: numpy (the models here are small and written by hand) and the node-by-node run of the
same model; the shipped detector `faceboxes` (NMS in a v1 while loop behind its backbone) against
real TF.js is in tests/test_shipped_models.py.
Tolerance: 64 ULPs of the output's scale, float32 products of 8 terms and tanh in another order
than numpy's float64 (measured: at most 6).
"""
from __future__ import annotations

import numpy as np
import pytest

import wgpu_runtime as wr
from wgpu_runtime.format import write_artifacts
from wgpu_runtime.format.nodes import NodeDef
from wgpu_runtime.graph.dynamic import executor as dyn_executor, island
from wgpu_runtime.graph.graph import Graph
from wgpu_runtime.tolerance import Tolerance, assert_close
from fixtures.tiny_models import loop_model

TOL = Tolerance(64.0, "float32 products of 8 terms and tanh against float64 numpy")


@pytest.fixture
def small_islands(monkeypatch):
    monkeypatch.setattr(island, "MIN_GPU_NODES", 1)     # the models here have a few kernels


def _nodes(*specs):
    return [NodeDef(name, op, list(ins), dict(attrs)) for name, op, ins, attrs in specs]


def test_the_island_ends_where_control_flow_starts(small_islands):
    f = {"T": "float32"}
    graph = Graph(_nodes(
        ("x", "Placeholder", [], {"dtype": "float32"}),
        ("a", "Relu", ["x"], f),
        ("a2", "Abs", ["a"], f),
        ("b", "Neg", ["a2"], f),
        ("c", "Const", ["^a2"], {"dtype": "float32"}),          # a control edge from inside
        ("e", "Enter", ["b"], {**f, "frame_name": "loop"}),
        ("m", "Merge", ["e", "n"], f),
        ("t", "Const", [], {"dtype": "bool"}),
        ("s", "Switch", ["m", "t"], f),
        ("body", "Mul", ["s:1", "c"], f),
        ("n", "NextIteration", ["body"], f),
        ("out", "Exit", ["s"], f),
        ("after", "Relu", ["out"], f),                          # behind the loop: dynamic part
    ))
    isl = island.find(graph, [("after", 0), ("a", 0)])
    assert isl.nodes == {"x", "a", "a2", "b", "c", "t"}
    assert sorted(isl.frontier) == [("a", 0), ("b", 0)]          # a: a target; b: read by the loop
    cut = isl.graph
    assert cut.nodes["b"].op == "Placeholder" and cut.nodes["a"].op == "Placeholder"
    assert "a2" not in cut.nodes                                 # ran in the plan only
    assert cut.nodes["c"].inputs == []                           # the plan ran a2: the edge is met
    assert cut.nodes["after"].op == "Relu" and cut.nodes["e"].inputs == ["b"]
    island.MIN_GPU_NODES = 4
    assert island.find(graph, [("after", 0)]) is None            # three kernels: not worth a plan


@pytest.mark.parametrize("on", [True, False])
def test_the_part_before_a_loop_runs_as_one_plan(device, tmp_path, monkeypatch, small_islands, on):
    monkeypatch.setattr(dyn_executor, "ISLANDS", on)
    rng = np.random.default_rng(3)
    pre = rng.uniform(-0.5, 0.5, (8, 8)).astype(np.float32)
    x = rng.uniform(-1, 1, (3, 8)).astype(np.float32)
    path = loop_model(tmp_path / "m", x.shape, "Mul", np.float32(1.5), 4, pre=pre)
    model = wr.load_graph_model(path, device=device)
    try:
        got = model.predict(x)
        want = np.tanh(np.tanh(x.astype(np.float64) @ pre) @ pre) * 1.5 ** 4
        assert_close(got, want, TOL, f"island {'on' if on else 'off'}", per="tensor")
        stats = model._dynamic.stats
        runner = model._dynamic._islands[(("out", 0),)]
        if on:      # the two MatMul + Tanh (fused at load) ran in the plan, not node by node
            assert runner.island is not None and {"pre/t1", "pre/t2"} <= runner.island.nodes
            assert stats["gpu_nodes"] == 5          # Mul x 4 in the loop body, the Identity after it
        else:
            assert runner.island is None and stats["gpu_nodes"] == 7
    finally:
        model.dispose()


def _reshape_model(folder):
    """x[6] -> Relu -> Neg -> Reshape(., shape) with the shape a model input: the static planner
    needs that shape's value, so the graph runs on the dynamic executor and Reshape cannot be
    in the island."""
    f, i = {"type": "DT_FLOAT"}, {"type": "DT_INT32"}
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": f, "shape": {"shape": {"dim": [{"size": "6"}]}}}},
        {"name": "shape", "op": "Placeholder", "attr": {"dtype": i, "shape": {"shape": {"dim": [{"size": "2"}]}}}},
        {"name": "relu", "op": "Relu", "input": ["x"], "attr": {"T": f}},
        {"name": "neg", "op": "Neg", "input": ["relu"], "attr": {"T": f}},
        {"name": "reshape", "op": "Reshape", "input": ["neg", "shape"], "attr": {"T": f, "Tshape": i}},
        {"name": "out", "op": "Identity", "input": ["reshape"], "attr": {"T": f}},
    ]
    write_artifacts(folder, {"format": "graph-model", "modelTopology": {"node": nodes, "library": {}, "versions": {}}},
                    [[]], shard_size=None)
    return folder


def test_a_node_the_planner_refuses_leaves_the_island(device, tmp_path, small_islands):
    model = wr.load_graph_model(_reshape_model(tmp_path / "r"), device=device)
    try:
        x = np.array([1, -2, 3, -4, 5, -6], np.float32)
        got = model.execute({"x": x, "shape": np.array([2, 3], np.int32)}, "out:0")
        np.testing.assert_array_equal(got, -np.maximum(x, 0).reshape(2, 3))
        runner = model._dynamic._islands[(("out", 0),)]
        assert runner.excluded == {"reshape"}
        assert runner.island.frontier == [("neg", 0)]
        got = model.execute({"x": x, "shape": np.array([3, 2], np.int32)}, "out:0")      # another shape
        np.testing.assert_array_equal(got, -np.maximum(x, 0).reshape(3, 2))
    finally:
        model.dispose()
