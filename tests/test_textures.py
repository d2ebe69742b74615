"""Texture operands (wgpu_runtime/textures.py) and the "texture" kernel variants that read them
(ops/tiled.py): the copy into the linear layout, the weight layout, where the variant is the
default, one scratch texture per plan and slot, the dynamic executor's copies, dispose. That each
texture variant computes every registry case right is tests/test_kernel_variants.py's job."""
import numpy as np
import pytest
import wgpu

import wgpu_runtime as wr
from wgpu_runtime import textures, tuning
from wgpu_runtime.conformance.op_cases import run_case
from wgpu_runtime.graph.collector import StepCollector
from wgpu_runtime.graph.dynamic import DynamicExecutor
from wgpu_runtime.graph.single_op import op_model
from wgpu_runtime.models import default_model_path
from wgpu_runtime.ops import REGISTRY, elementwise_chain, tiled
from wgpu_runtime.memory import Buf
from wgpu_runtime.ops.launch import COPY_TO_TEXTURE, Lowering, Step
from wgpu_runtime.ops.conv import geometry
from wgpu_runtime.textures import WIDTH, Tex


def _texture_rows(device, tex, rows: int) -> np.ndarray:
    out = device.device.create_buffer(size=rows * WIDTH * 16, usage=wgpu.BufferUsage.COPY_DST | wgpu.BufferUsage.COPY_SRC)
    enc = device.device.create_command_encoder()
    enc.copy_texture_to_buffer({"texture": tex}, {"buffer": out, "bytes_per_row": WIDTH * 16, "rows_per_image": rows},
                               (WIDTH, rows, 1))
    device.queue.submit([enc.finish()])
    return np.frombuffer(device.queue.read_buffer(out), np.float32).reshape(-1, 4)


@pytest.mark.parametrize("prepared", [False, True], ids=["wgpu-py", "prepared"])
def test_copy_fills_the_linear_layout_whole_rows_then_the_rest(device, prepared):
    n = 2 * WIDTH + 7                                   # two whole rows and a partial one
    data = np.random.default_rng(0).standard_normal((n + 5, 4)).astype(np.float32)
    buf = device.device.create_buffer_with_data(data=data, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC)
    tex = textures.create(device, WIDTH, 3)
    enc = device.device.create_command_encoder()
    if prepared:
        textures.encode_prepared(enc, textures.prepare_copy(buf, 5 * 16, tex, n))
    else:
        textures.encode_copy(enc, buf, 5 * 16, tex, n)
    device.queue.submit([enc.finish()])
    np.testing.assert_array_equal(_texture_rows(device, tex, 3)[:n], data[5:])


def test_weight_layout_pads_rows_to_vec4s_and_the_texture_to_whole_rows(device):
    m = np.arange(3 * 6, dtype=np.float32).reshape(3, 6) + 1
    texels = textures.texels_of(device, m)
    assert texels.shape == (3, 8, 4)        # 6 texels: 8 wide (a power of two), 3 rows (textures.extent)
    flat = texels.reshape(-1)
    np.testing.assert_array_equal(flat[:24].reshape(3, 8)[:, :6], m)
    assert not flat[:24].reshape(3, 8)[:, 6:].any() and not flat[24:].any()
    assert textures.extent(device, WIDTH * 100_000) is None       # past max-texture-dimension-2d


@pytest.mark.parametrize("texels", [0, 1, 2, 3, 6, 408, 2049, WIDTH - 1, WIDTH, WIDTH + 1, 2 * WIDTH,
                                    3 * WIDTH, 4 * WIDTH - 5, 4 * WIDTH, 64 * WIDTH + 1, 1024 * WIDTH])
def test_every_texture_has_a_power_of_two_width_and_a_height_that_is_not(device, texels):
    # llvmpipe compiles a kernel once per power-of-two-ness of its textures' sizes: one shape
    # class for all of them keeps that to one compile per pipeline (textures.extent)
    width, height = textures.extent(device, texels)
    assert width & (width - 1) == 0 and height & (height - 1) != 0
    assert width * height >= texels and (width == WIDTH if texels > WIDTH else width >= texels)
    needed = max(1, -(-texels // width))
    assert height - needed <= (2 if needed == 1 else 1)     # at most one row more (1 row: 3)


@pytest.mark.parametrize("family,sizes", [("matmul", (64, 64, 64)), ("matmul", (16, 16, 16)),
                                         ("depthwise", (8, 8, 16)), ("depthwise", (4, 4, 8))])
def test_texture_variant_is_the_software_default_from_min_macs(device, family, sizes):
    with tuning.disabled(), tuning.recording() as points:
        if family == "matmul":
            m, n, k = sizes
            tiled.matmul_variant(device, m, n, k, 1, texture=True)
            big = m * n * k >= tiled.TEXTURE_MIN_MACS
        else:
            h, w, c = sizes
            g = geometry({"strides": [1, 1, 1, 1], "padding": "SAME"}, (1, h, w, c), 3, 3)
            tiled.depthwise_variant(device, g, c // 4)
            big = h * w * c * 9 >= tiled.DEPTHWISE_TEXTURE_MIN_MACS
    order = points[0].candidates
    assert device.is_software
    assert order.index(tiled.TEXTURE.name) == (0 if big else 1), order


def test_a_plan_shares_its_scratch_textures_and_dispose_frees_them(device):
    """One scratch texture per slot for the whole plan: slot 0 for the operands, slot 1 for the
    fused residuals (this MobileNetV2 adds them in its project convolutions)."""
    model = wr.load_graph_model(default_model_path(), adapter=device.backend)
    x = np.random.default_rng(1).random((1, 128, 128, 3), dtype=np.float32)
    want = model.predict(x)
    plan = next(iter(model._plans.values()))
    texs = [b for st in plan.steps for b in st.bindings if isinstance(b, Tex)]
    scratch = {id(b.scratch): b.scratch for b in texs if b.kind == "scratch"}
    assert len(scratch) == 2 and any(b.kind == "weight" for b in texs)
    residual_steps = [st for st in plan.steps if st.pipeline is not None and st.kernel.startswith("conv2d_texture")
                      and st.bindings[7].kind == "scratch"]
    assert residual_steps and {id(st.bindings[7].scratch) for st in residual_steps} != {id(st.bindings[0].scratch)
                                                                                          for st in residual_steps}
    for shared in scratch.values():
        assert all(b.width <= shared.width and b.height <= shared.height for b in texs if b.scratch is shared)
    # the GPU textures bound (weights and the shared scratch ones) are all of one size class:
    # power-of-two width, other height, so llvmpipe compiles each kernel once (textures.extent)
    bound = {id(t.gpu): t.gpu for t in [*texs, *scratch.values()] if t.gpu is not None}.values()
    assert bound and all(t.width & (t.width - 1) == 0 and t.height & (t.height - 1) != 0 for t in bound)
    copies = [st for st in plan.steps if st.pipeline is None]
    assert copies and plan.dispatches == len(plan.steps) - len(copies)
    assert model.memory_info()["texture_bytes"] == sum(s.nbytes for s in scratch.values())
    assert model.weight_bytes >= sum({id(b): b.nbytes for b in texs if b.kind == "weight"}.values())
    model.dispose()
    again = wr.load_graph_model(default_model_path(), adapter=device.backend)
    np.testing.assert_array_equal(again.predict(x), want)


def test_a_matmul_weight_the_texture_variant_reads_is_not_also_a_buffer(device):
    """On a software adapter the texture variant comes first: the model does not preload the
    classifier's B as a buffer (OpDef.texture_inputs), the texture plan never asks for it, and a
    plan that picks another variant uploads it on first use."""
    model = wr.load_graph_model(default_model_path(), adapter=device.backend)
    (node,) = [n for n in model.graph.nodes.values() if n.op == "_FusedMatMul"]
    key = model.graph.data_inputs(node)[1][0]
    assert model.graph.nodes[key].op == "Const" and tiled.texture_first(device)
    assert key not in model._buffers
    x = np.random.default_rng(2).random((1, 128, 128, 3), dtype=np.float32)
    want = model.predict(x)
    assert key not in model._buffers and model._textures
    with tuning.forcing({"matmul": "regblock"}):
        other = wr.load_graph_model(default_model_path(), adapter=device.backend)
        got = other.predict(x)
    assert key in other._buffers
    # the same model, the classifier's 1280-long dot products summed in another order (a few
    # float32 ULP of the logits), then softmax
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("op", ["MaxPool", "AvgPool"])
def test_pooling_reads_a_texture_copy_and_passes_every_registry_case(device, op, monkeypatch):
    """Every float32 registry case of the op through pool_texture.wgsl (the threshold lowered
    to 0 so that the small cases take it too) against the numpy reference, with the registry's
    tolerance; int32 MaxPool keeps the storage-buffer kernel."""
    monkeypatch.setattr(tiled, "DEPTHWISE_TEXTURE_MIN_MACS", 0)
    chosen, pool_texture = [], tiled.pool_texture
    monkeypatch.setattr(tiled, "pool_texture", lambda *a: chosen.append(pool_texture(*a)) or chosen[-1])
    failures = []
    for i, case in enumerate(REGISTRY[op].cases):
        r = run_case(op, i, device)
        if not r.passed:
            failures.append(f"case {i} ({r.note}): {r.message}")
    assert not failures, "\n".join(failures)
    assert chosen and all(chosen)       # every float32 case planned took the texture kernel


def test_elementwise_chains_read_texture_copies_and_pass_every_registry_case(device, monkeypatch):
    """Every _FusedElementwise registry case with each input of whole texels read from a texture
    copy (the size threshold lowered to 0; the other inputs stay storage buffers in the same
    kernel), against the numpy reference with the registry's tolerance."""
    monkeypatch.setattr(elementwise_chain, "TEXTURE_MIN_ELEMENTS", 0)
    copied = []
    texture_of = Lowering.texture_of
    monkeypatch.setattr(Lowering, "texture_of", lambda self, *a, **k: copied.append(a) or texture_of(self, *a, **k))
    failures = []
    for i, case in enumerate(REGISTRY[elementwise_chain.OP].cases):
        r = run_case(elementwise_chain.OP, i, device)
        if not r.passed:
            failures.append(f"case {i} ({r.note}): {r.message}")
    assert not failures, "\n".join(failures)
    assert len(copied) >= 4          # the cases with inputs of whole texels took the texture path


@pytest.mark.parametrize("cin,k,cout,transposed,offered", [
    (3, 3, 32, False, True),          # MobileNetV2's stem: 864 multiply-adds per output pixel
    (4, 3, 16, False, True), (1, 5, 32, False, True),
    (5, 3, 16, False, False),         # more than 4 input channels
    (3, 7, 64, False, False),         # ResNet's stem: 9408 terms, past conv_uniform.MAX_TERMS
    (3, 3, 32, True, False)])         # Conv2DBackpropInput's gather
def test_uniform_convolution_is_the_software_default_where_it_fits(device, cin, k, cout, transposed, offered):
    """conv2d_uniform.wgsl (the filter in the uniform block, an unrolled body) is offered for an
    input of at most 4 channels and at most MAX_TERMS multiply-adds per pixel, first on software
    adapters (every registry case runs through it in test_kernel_variants)."""
    g = geometry({"strides": [1, 2, 2, 1], "padding": "SAME"}, (1, 224, 224, cin), k, k)
    with tuning.disabled(), tuning.recording() as points:
        tiled.conv_variant(device, g, g.oh * g.ow, cout // 4, 1 if cin <= 4 else 2, transposed)
    order = points[0].candidates
    assert (tiled.UNIFORM.name in order) == offered, order
    if offered:
        assert device.is_software and order[0] == tiled.UNIFORM.name, order


@pytest.mark.parametrize("shape,k,stride,padding", [
    ((1, 5, 5, 3), 3, 1, "SAME"),     # 75 floats: not whole texels, so read from a copy padded to 4 channels
    ((3, 7, 6, 1), 2, 2, "VALID"), ((2, 9, 9, 4), 3, 2, "SAME"),
    ((1, 6, 6, 2), 5, 1, "SAME")])    # 72 floats: read as they are (dense_x.wgsl)
def test_uniform_convolution_matches_the_reference(device, shape, k, stride, padding):
    """conv2d_uniform.wgsl forced on inputs of 1-4 channels, dense or padded to 4, batches,
    strides and padding, against the numpy reference (float32 sums of <= 100 terms)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    f = rng.standard_normal((k, k, shape[3], 8)).astype(np.float32)
    attrs = {"strides": [1, stride, stride, 1], "padding": padding, "data_format": "NHWC"}
    key = ("conv2d", tiled.UNIFORM.name, device.name)
    before = tiled.LAUNCHED[key]
    with tuning.forcing({"conv2d": tiled.UNIFORM.name}):
        got = op_model("Conv2D", attrs, [x, f], device, const_inputs={1}).execute({"in0": x})[0]
    assert tiled.LAUNCHED[key] == before + 1
    np.testing.assert_allclose(np.asarray(got), REGISTRY["Conv2D"].run_reference(attrs, [x, f])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_m", [0, 1 << 30], ids=["pixel-lanes", "channel-lanes"])
def test_texture_convolution_passes_every_registry_case_with_either_lane_layout(device, max_m, monkeypatch):
    """Every registry case of the convolutions and 2-D matmuls (B as a weight) through the
    texture variant with its lanes on pixels everywhere, then on channel blocks everywhere
    (tiled.COLUMN_LANES_MAX_M; the default splits at 32 rows), against the numpy reference with
    the registry's tolerance."""
    monkeypatch.setattr(tiled, "COLUMN_LANES_MAX_M", max_m)
    launched, texture_launch = [], tiled.texture_launch
    monkeypatch.setattr(tiled, "texture_launch", lambda *a: launched.append(texture_launch(*a)) or launched[-1])
    failures = []
    with tuning.forcing({"conv2d": tiled.TEXTURE.name, "matmul": tiled.TEXTURE.name}):
        for op in ("Conv2D", "_FusedConv2D", "Conv2DBackpropInput", "MatMul", "_FusedMatMul"):
            for i in range(len(REGISTRY[op].cases)):
                r = run_case(op, i, device, (1,) if "MatMul" in op else ())
                if not r.passed:
                    failures.append(f"{op} case {i} ({r.note}): {r.message}")
    assert not failures, "\n".join(failures)
    layouts = {bool(constants.get("COLUMN_LANES")) for _, _, constants in launched}
    assert layouts == {max_m > 0}, layouts      # every texture launch took the layout under test


def test_element_wise_ops_run_as_texture_chains_and_pass_their_registry_cases(device, monkeypatch):
    """Every chainable unary and binary op's float32 registry cases as a one-step chain reading
    texture copies (elementwise._as_chain, the size threshold lowered to 0), against the numpy
    reference with each op's tolerance."""
    monkeypatch.setattr(elementwise_chain, "TEXTURE_MIN_ELEMENTS", 0)
    ops = sorted(op for op in REGISTRY if op != "AddN" and elementwise_chain.chainable(op))
    assert {"AddV2", "Mul", "Relu6", "Sigmoid", "LeakyRelu"} <= set(ops)
    chained, failures = [], []
    lower_op = Lowering.lower_op
    monkeypatch.setattr(Lowering, "lower_op", lambda self, op, *a, **k: chained.append(op) or lower_op(self, op, *a, **k))
    for op in ops:
        for i, case in enumerate(REGISTRY[op].cases):
            if any(np.asarray(a).dtype != np.float32 for a in case.materialize()):
                continue
            r = run_case(op, i, device)
            if not r.passed:
                failures.append(f"{op} case {i} ({r.note}): {r.message}")
    assert not failures, "\n".join(failures)
    assert chained.count(elementwise_chain.OP) > len(ops)


@pytest.mark.parametrize("min_elements", [1 << 40, 0], ids=["buffers", "textures"])
def test_chains_of_whole_vec4s_run_four_elements_per_invocation(device, min_elements, monkeypatch):
    """Every chainable op's float32 registry cases whose inputs share one shape, each input
    stacked 4 times along a new outer dim (so the output is whole vec4s), as a one-step chain: where every input has the output's
    layout the chain runs four elements per invocation (elementwise_chain._quads), from storage
    buffers and from texture copies; also a per-channel and a scalar operand. Against the numpy
    reference with each op's tolerance."""
    from wgpu_runtime.graph.single_op import op_model
    from wgpu_runtime.tolerance import compare, op_tolerance

    monkeypatch.setattr(elementwise_chain, "TEXTURE_MIN_ELEMENTS", min_elements)
    bodies, dispatch = [], Lowering.dispatch
    monkeypatch.setattr(Lowering, "dispatch", lambda self, kernel, *a, template=None, **k:
                        bodies.append((template or {}).get("BODY", "")) or dispatch(self, kernel, *a, template=template, **k))
    runs, failures = [], []
    for op in sorted(op for op in REGISTRY if op != "AddN" and elementwise_chain.chainable(op)):
        for i, case in enumerate(REGISTRY[op].cases):
            inputs = case.materialize(seed=i)
            if any(np.asarray(a).dtype != np.float32 or np.shape(a) != np.shape(inputs[0]) for a in inputs):
                continue        # (broadcasting cases: the registry-case test above, and below)
            runs.append([np.stack([np.asarray(a)] * 4) for a in inputs])
            runs[-1].insert(0, op)
    rng = np.random.default_rng(3)
    x = rng.uniform(-4, 4, (2, 3, 8)).astype(np.float32)
    runs += [["Mul", x, rng.standard_normal(8).astype(np.float32)], ["AddV2", x, np.float32(0.5)],
             ["SquaredDifference", rng.standard_normal(8).astype(np.float32), x]]
    for op, *inputs in runs:
        attrs = {"alpha": 0.2} if op == "LeakyRelu" else {}
        steps = [[op, attrs, [f"i{k}" for k in range(len(inputs))]]]
        want = REGISTRY[op].run_reference(attrs, inputs)
        n = len(bodies)
        got = op_model(elementwise_chain.OP, {"steps": steps}, inputs, device, const_inputs=set()).execute(
            {f"in{k}": a for k, a in enumerate(inputs)})[0]
        c = compare(np.asarray(got), want[0], op_tolerance(REGISTRY[op], attrs, inputs, want), op)
        if not c.ok:
            failures.append(f"{op} {[np.shape(a) for a in inputs]}: {c.message}")
        if want[0].size and all(np.shape(a) in (np.shape(want[0]), (), (8,)) for a in inputs):
            assert "s0w" in bodies[n], (op, [np.shape(a) for a in inputs])     # four per invocation
    assert not failures, "\n".join(failures)
    assert len(runs) > 40


@pytest.mark.parametrize("min_elements", [1 << 40, 0], ids=["buffers", "textures"])
def test_random_chains_with_broadcasting_match_the_reference(device, min_elements, monkeypatch):
    """60 seeded random chains of 1-3 steps over 1-3 inputs (each the output's shape, a scalar,
    its last dim, or the shape with some dims 1) of rank 1-4, whole vec4s or not: one and four
    elements per invocation, from buffers and texture copies, against the numpy reference
    (float32 steps whose kernels are their registry expressions: 1e-5 relative per step)."""
    from wgpu_runtime.graph.single_op import op_model
    from wgpu_runtime.tolerance import compare

    monkeypatch.setattr(elementwise_chain, "TEXTURE_MIN_ELEMENTS", min_elements)
    rng = np.random.default_rng(11)
    unary = ["Relu", "Relu6", "Sigmoid", "Tanh", "Neg", "Abs", "Square", "Elu", "LeakyRelu"]
    binary = ["AddV2", "Sub", "Mul", "Maximum", "Minimum", "SquaredDifference"]
    ran, quads = 0, 0
    while ran < 60:
        out = tuple(int(d) for d in rng.choice([1, 2, 3, 4, 5, 8, 12, 16], rng.integers(1, 5)))
        shapes = [[out, (), out[-1:], tuple(d if rng.random() < 0.5 else 1 for d in out)][rng.integers(4)]
                  for _ in range(rng.integers(1, 4))]
        xs = [rng.uniform(-3, 3, sh).astype(np.float32) for sh in shapes]
        vals, steps = [f"i{k}" for k in range(len(xs))], []
        for j in range(rng.integers(1, 4)):
            if len(vals) > 1 and rng.random() < 0.6:
                a, b = rng.choice(len(vals), 2)
                steps.append([str(rng.choice(binary)), {}, [vals[a], vals[b]]])
            else:
                steps.append([str(rng.choice(unary)), {"alpha": 0.2}, [vals[rng.integers(len(vals))]]])
            vals.append(f"s{j}")
        for k in range(len(xs)):                 # every input feeds the result
            if all(f"i{k}" not in args for _, _, args in steps):
                steps.append(["AddV2", {}, [f"s{len(steps) - 1}", f"i{k}"]])
        attrs = {"steps": steps}
        want = REGISTRY[elementwise_chain.OP].run_reference(attrs, xs)[0]
        if want.shape != np.broadcast_shapes(*shapes):
            continue            # the last step must have the whole shape (as the optimizer's chains do)
        got = op_model(elementwise_chain.OP, attrs, xs, device, const_inputs=set()).execute(
            {f"in{k}": x for k, x in enumerate(xs)})[0]
        c = compare(np.asarray(got), want, 1e-5 * len(steps), "chain")
        assert c.ok, (shapes, steps, c.message)
        ran += 1
        quads += elementwise_chain._quads(elementwise_chain._broadcast_dims(want.shape, *shapes), len(xs), want.size)
    assert 10 <= quads <= 50, quads          # both ways were taken


@pytest.mark.parametrize("op", ["_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul", "stem"])
def test_dynamic_programs_copy_into_their_own_textures(device, op):
    """The dynamic executor's per-node programs run the texture variants too (their copies go
    through the stream): the same result as the planned model and the numpy reference. "stem":
    an RGB input, the uniform convolution (its filter in the uniform block)."""
    rng = np.random.default_rng(2)
    variant = "uniform" if op == "stem" else "texture"
    if op == "stem":
        op, cin = "_FusedConv2D", 3
    else:
        cin = 16
    if op == "_FusedMatMul":
        inputs = [rng.standard_normal((40, 72)), rng.standard_normal((72, 36)), rng.standard_normal(36)]
        attrs = {"fused_ops": [b"BiasAdd", b"Relu"]}
    else:
        x = rng.standard_normal((2, 20, 20, cin))
        f = rng.standard_normal((3, 3, cin, 24 if op == "_FusedConv2D" else 1))
        cout = f.shape[3] if op == "_FusedConv2D" else f.shape[2] * f.shape[3]
        inputs = [x, f, rng.standard_normal(cout)]
        attrs = {"fused_ops": [b"BiasAdd", b"Relu6"], "strides": [1, 1, 1, 1], "padding": b"SAME",
                 "data_format": b"NHWC", "dilations": [1, 1, 1, 1], "T": "float32", "num_args": 1}
    inputs = [a.astype(np.float32) for a in inputs]
    want = REGISTRY[op].run_reference(attrs, inputs)[0]
    results = []
    for dynamic in (False, True):
        model = op_model(op, attrs, inputs, device, const_inputs={1, 2})
        if dynamic:
            model._dynamic = DynamicExecutor(model)
        before = sum(v for (fam, name, dev), v in tiled.LAUNCHED.items() if name == variant and dev == device.name)
        with tuning.disabled():
            results.append(model.execute({"in0": inputs[0]}, ["op:0"])[0])
        after = sum(v for (fam, name, dev), v in tiled.LAUNCHED.items() if name == variant and dev == device.name)
        assert after > before, f"the {variant} variant did not run"
    np.testing.assert_allclose(results[0], want, rtol=1e-4, atol=1e-4)     # float32 sums of <= 144 terms
    np.testing.assert_array_equal(results[1], results[0])


# ------------------------------------------------------------------ one copy per buffer and plan
def _copies(steps):
    return [st for st in steps if st.kernel == COPY_TO_TEXTURE]


def _reader(col, *bindings):
    col.add_step(Step("reader.wgsl", None, list(bindings), b"", (1, 1, 1), "reader", "Op"))


def test_an_earlier_copy_serves_a_later_read_and_moves_to_its_slot():
    """The residual block's pattern: x copied for the first convolution (slot 0), other copies
    through slot 0, then x asked for as a residual (slot 1): no second copy, the first one and
    its reader now use slot 1."""
    col = StepCollector(None, None)
    x, y, z = Buf(4096), Buf(4096), Buf(4096)
    t0 = col.texture_copy(x, 256, 64, 5, 0, "expand", "Op")
    _reader(col, t0, y)
    ty = col.texture_copy(y, 256, 64, 5, 0, "depthwise", "Op")
    _reader(col, ty, z)
    tz = col.texture_copy(z, 256, 64, 5, 0, "project", "Op")
    tr = col.texture_copy(x, 256, 64, 5, 1, "project", "Op")
    _reader(col, tz, tr, Buf(4096))
    assert tr is t0 and t0.scratch is col.scratch[1] and ty.scratch is tz.scratch is col.scratch[0]
    assert [st.bindings[0] for st in _copies(col.steps)] == [x, y, z]


@pytest.mark.parametrize("between", ["reads the buffer", "writes the buffer", "uses the slot", "other texels",
                                     "another view"])
def test_a_copy_is_made_again_when_its_content_or_slot_may_have_changed(between):
    col = StepCollector(None, None)
    x = Buf(8192)
    t0 = col.texture_copy(x, 256, 64, 5, 0, "first", "Op")
    _reader(col, t0, Buf(16))
    texels, src = 256, x
    if between in ("reads the buffer", "writes the buffer"):      # (a step's bindings do not say which)
        _reader(col, x) if between == "reads the buffer" else _reader(col, Buf(16), x.view(0, 4096))
    elif between == "uses the slot":                               # slot 1 holds something read later
        col.texture_copy(Buf(4096), 256, 64, 5, 1, "other", "Op")
    elif between == "other texels":
        texels = 128
    else:
        src = x.view(4096, 4096)
    again = col.texture_copy(src, texels, 64, 5, 1, "second", "Op")
    assert again is not t0 and t0.scratch is col.scratch[0] and again.scratch is col.scratch[1]
    assert len(_copies(col.steps)) == (3 if between == "uses the slot" else 2)


def test_residual_blocks_copy_their_input_once_and_compute_the_same(device, monkeypatch):
    """The embedded MobileNetV2's residual blocks read their input as the first convolution's
    input and as the last one's residual: one copy each, the same texture bound at both; the
    outputs are the very numbers of the plan that copies it twice."""
    x = np.random.default_rng(3).random((1, 128, 128, 3), dtype=np.float32)
    model = wr.load_graph_model(default_model_path(), adapter=device.backend)
    got = model.predict(x)
    plan = next(iter(model._plans.values()))
    copies = _copies(plan.steps)
    assert len({(id(st.bindings[0].root), st.bindings[0].offset) for st in copies}) == len(copies)
    residuals = [st for st in plan.steps if st.kernel.startswith("conv2d_texture") and st.bindings[7].kind == "scratch"]
    firsts = {id(st.bindings[0]) for st in plan.steps if st.kernel.startswith("conv2d_texture")}
    assert residuals and all(id(st.bindings[7]) in firsts for st in residuals)
    monkeypatch.setattr(StepCollector, "_reuse", lambda self, src, texels, slot: None)
    twice = wr.load_graph_model(default_model_path(), adapter=device.backend)
    np.testing.assert_array_equal(twice.predict(x), got)
    plan2 = next(iter(twice._plans.values()))
    assert len(_copies(plan2.steps)) == len(copies) + len(residuals)
