"""Training on the CPU autograd against Keras (tf_keras on TF CPU), and the trip back out:
fine-tuned weights on the GPU, saved, and read by this runtime, real TensorFlow.js and Keras.

Tolerances (each a float32 argument, not a guess):
* per-epoch history (loss, metrics, val_*): rtol 1e-4. Same initial weights, same data order
  (shuffle=False), same update rules; differences are float32 rounding (numpy/BLAS vs Eigen
  summation order) compounded over ~30 optimizer steps -- measured <= 4e-6 relative (MLP),
  2e-6 (CNN), 3e-7 (LSTM).
* weights after a few optimizer steps: rtol 1e-4, atol 1e-6 (same reason; Adam/RMSprop divide by
  sqrt of small second moments, which amplifies a rounding difference of the gradient).
* predictions after fitting: atol 1e-4 (the rounding differences of the weights, propagated;
  measured <= 3e-6).
* a saved model read back: bit-exact here; 1e-5 + 1e-5 |y| in TF.js and Keras (float32 kernels).
"""
import json

import numpy as np
import pytest

import wgpu_runtime as wr
from fixtures.layers_models import TRAINING, layers_fixture, load_npz
from wgpu_runtime.autograd import Var, backward
from wgpu_runtime.layers import EagerCtx, model_from_topology

tf = pytest.importorskip("tensorflow")
k = pytest.importorskip("tf_keras")

HIST_RTOL = 1e-4


def _our_optimizer(spec):
    name, kwargs = spec
    return getattr(wr.optimizers, name)(**kwargs)


def _fit_like_keras(name):
    spec = TRAINING[name]
    data = load_npz(name)
    model = wr.load_layers_model(layers_fixture(name))
    model.compile(_our_optimizer(spec["optimizer"]), spec["loss"], spec["metrics"])
    hist = model.fit(data["x"], data["y"], epochs=spec["epochs"], batch_size=spec["batch_size"],
                     validation_split=spec["validation_split"], shuffle=False, verbose=0)
    return model, hist, data, json.loads((layers_fixture(name) / "train.json").read_text())


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm"])
def test_fit_matches_keras(name):
    model, hist, data, keras = _fit_like_keras(name)
    assert sorted(hist.history) == sorted(keras["history"])
    for key, theirs in keras["history"].items():
        np.testing.assert_allclose(hist.history[key], theirs, rtol=HIST_RTOL, err_msg=key)
    assert hist.epoch == list(range(keras["epochs"]))
    # the trained weights: CPU forward and the refreshed GPU copy both give Keras' predictions
    np.testing.assert_allclose(model(data["x_test"]), data["pred_trained"], atol=1e-4)
    np.testing.assert_allclose(model.predict(data["x_test"]), data["pred_trained"], atol=1e-4)


def test_gpu_copy_is_rewritten_in_place():
    """After training, the GPU weights are refreshed by rewriting the same buffers (no reload):
    the weight buffer objects before and after are the same, and predictions follow the weights."""
    model = wr.load_layers_model(layers_fixture("cnn"))
    data = load_npz("cnn")
    x = data["x_test"]
    model.predict(x)
    gm, _ = model.gpu_model([x])
    before = {key: buf.gpu for key, buf in gm._buffers.items()}
    model.compile(wr.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.fit(data["x"][:64], data["y"][:64], epochs=1, batch_size=32, verbose=0, shuffle=False)
    y_gpu = model.predict(x)
    after = {key: buf.gpu for key, buf in gm._buffers.items()}
    assert model.gpu_model([x])[0] is gm
    assert set(before) == set(after) and all(before[key] is after[key] for key in before)
    np.testing.assert_allclose(y_gpu, model(x), atol=1e-5)
    assert np.abs(y_gpu - data["pred_initial"]).max() > 1e-3


# ------------------------------------------------------------------ optimizers, losses, metrics
def _tiny_keras_model(regularized=False):
    k.utils.set_random_seed(11)
    kw = {}
    if regularized:
        kw = {"kernel_regularizer": k.regularizers.L1L2(0.01, 0.02), "activity_regularizer": k.regularizers.L2(0.01),
              "kernel_constraint": k.constraints.MaxNorm(0.5)}
    return k.Sequential([k.Input((6,)), k.layers.Dense(5, activation="tanh", **kw), k.layers.Dense(3)])


OPTIMIZERS = [
    ("SGD", {"learning_rate": 0.1}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "clipvalue": 0.05}),
    ("Adam", {"learning_rate": 0.01}),
    ("Adam", {"learning_rate": 0.01, "amsgrad": True, "clipnorm": 0.1}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("RMSprop", {"learning_rate": 0.01}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True, "global_clipnorm": 0.2}),
    ("Adagrad", {"learning_rate": 0.1}),
]


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=[f"{n}-{'-'.join(kw)}" for n, kw in OPTIMIZERS])
def test_optimizer_steps_match_keras(opt):
    name, kwargs = opt
    rng = np.random.default_rng(5)
    x = rng.standard_normal((24, 6)).astype(np.float32)
    y = rng.standard_normal((24, 3)).astype(np.float32)
    km = _tiny_keras_model()
    ours = model_from_topology({"model_config": json.loads(km.to_json())})
    ours.set_weights(km.get_weights())
    km.compile(getattr(k.optimizers, name)(**kwargs), "mse")
    km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    ours.compile(getattr(wr.optimizers, name)(**kwargs), "mse")
    ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert ours.optimizer.iterations == 6
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_regularizers_and_constraints_match_keras():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.standard_normal((32, 3)).astype(np.float32)
    km = _tiny_keras_model(regularized=True)
    ours = model_from_topology({"model_config": json.loads(km.to_json())})
    ours.set_weights(km.get_weights())
    km.compile(k.optimizers.SGD(0.2), "mse")
    ours.compile(wr.optimizers.SGD(0.2), "mse")
    h1 = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(x[:8], y[:8]))
    h2 = ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=HIST_RTOL)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert np.linalg.norm(ours.get_weights()[0], axis=0).max() <= 0.5 + 1e-6    # MaxNorm held


LOSSES = [
    ("MeanSquaredError", {}, "reg"), ("MeanAbsoluteError", {}, "reg"), ("Huber", {"delta": 0.7}, "reg"),
    ("BinaryCrossentropy", {}, "prob"), ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "bin"),
    ("BinaryCrossentropy", {}, "sigmoid"),
    ("CategoricalCrossentropy", {}, "prob"), ("CategoricalCrossentropy", {"from_logits": True}, "cat"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "softmax"),
    ("SparseCategoricalCrossentropy", {}, "prob"), ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse"),
    ("SparseCategoricalCrossentropy", {}, "softmax"),
]


@pytest.mark.parametrize("case", LOSSES, ids=[f"{c[0]}-{c[2]}-{'-'.join(c[1])}" for c in LOSSES])
def test_loss_and_gradient_match_keras(case):
    """Value and d loss / d (prediction or the logits of a final softmax / sigmoid)."""
    name, kwargs, kind = case
    rng = np.random.default_rng(len(name) + len(kind))
    logits = rng.standard_normal((6, 4)).astype(np.float32)
    sparse = name.startswith("Sparse")
    if sparse:
        y_true = rng.integers(0, 4, (6,)).astype(np.float32)
    elif name.startswith("Binary"):
        y_true = (rng.random((6, 4)) < 0.5).astype(np.float32)
    elif name.startswith("Categorical"):
        y_true = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    else:
        y_true = rng.standard_normal((6, 4)).astype(np.float32)
    if kind == "prob":
        logits = (np.abs(logits) + 0.05) / (np.abs(logits) + 0.05).sum(axis=1, keepdims=True)
    kl = getattr(k.losses, name)(**kwargs)
    t = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(t)
        pred = {"softmax": k.activations.softmax, "sigmoid": k.activations.sigmoid}.get(kind, lambda v: v)(t)
        want = kl(y_true, pred)
    want_g = tape.gradient(want, t)
    ctx = EagerCtx()
    v = Var(logits, requires_grad=True)
    pred = {"softmax": lambda a: ctx.op("Softmax", a), "sigmoid": lambda a: ctx.op("Sigmoid", a)}.get(kind, lambda a: a)(v)
    got = getattr(wr.losses, name)(**kwargs)(ctx, y_true, pred)
    np.testing.assert_allclose(ctx.value(got), want.numpy(), rtol=1e-5, atol=1e-6)
    backward(got)
    np.testing.assert_allclose(v.grad, want_g.numpy(), rtol=1e-4, atol=1e-6)


def test_loss_names_resolve():
    for n in ("mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy",
              "sparse_categorical_crossentropy", "mean_squared_error"):
        assert isinstance(wr.losses.get(n), wr.losses.Loss)
    with pytest.raises(ValueError, match="unknown loss"):
        wr.losses.get("hinge_of_fate")


METRICS = [("accuracy", "binary"), ("accuracy", "sparse"), ("accuracy", "categorical"),
           ("binary_accuracy", "binary"), ("categorical_accuracy", "categorical"),
           ("sparse_categorical_accuracy", "sparse"), ("top_k_categorical_accuracy", "categorical"),
           ("sparse_top_k_categorical_accuracy", "sparse"), ("mae", "reg"), ("mse", "reg")]


@pytest.mark.parametrize("case", METRICS, ids=[f"{m}-{kind}" for m, kind in METRICS])
def test_metric_matches_keras(case):
    metric, kind = case
    rng = np.random.default_rng(3)
    pred = rng.random((40, 1 if kind == "binary" else 7)).astype(np.float32)
    y = {"binary": (rng.random((40, 1)) < 0.5).astype(np.float32),
         "sparse": rng.integers(0, 7, (40, 1)).astype(np.float32),
         "categorical": np.eye(7, dtype=np.float32)[rng.integers(0, 7, 40)],
         "reg": rng.random((40, 7)).astype(np.float32)}[kind]
    km = k.Sequential([k.Input(pred.shape[1:]), k.layers.Activation("linear")])
    km.compile(loss="mse" if kind != "sparse" else "sparse_categorical_crossentropy", metrics=[metric])
    theirs = km.evaluate(pred, y, batch_size=16, verbose=0, return_dict=True)[metric]
    m = wr.metrics.get(metric, y.shape, pred.shape)
    for s in range(0, 40, 16):          # batched like Keras: the running mean must not care
        m.update_state(y[s:s + 16], pred[s:s + 16])
    assert m.result() == pytest.approx(theirs, rel=1e-6, abs=1e-7)


# -------------------------------------------------------------------------------- callbacks
def test_early_stopping_matches_keras():
    """Same monitored sequence -> the same stopping epoch and restored weights as tf_keras."""
    values = [1.0, 0.8, 0.81, 0.79, 0.795, 0.9, 0.7, 0.75, 0.76, 0.77]
    for kwargs in ({"patience": 2, "min_delta": 0.005}, {"patience": 1, "restore_best_weights": True},
                   {"patience": 3, "baseline": 0.75}, {"patience": 0, "start_from_epoch": 3}):
        outcomes = []
        for lib in (k.callbacks, wr.callbacks):
            class Fake:
                stop_training = False
                weights = 0

                def get_weights(self):
                    return [self.weights]

                def set_weights(self, w):
                    self.weights = ("restored", w[0])
            model = Fake()
            cb = lib.EarlyStopping(monitor="val_loss", **kwargs)
            cb.set_model(model)
            cb.on_train_begin()
            stopped = None
            for epoch, v in enumerate(values):
                model.weights = epoch
                cb.on_epoch_end(epoch, {"val_loss": v})
                if model.stop_training:
                    stopped = epoch
                    break
            cb.on_train_end()
            outcomes.append((stopped, model.weights))
        assert outcomes[0] == outcomes[1], kwargs


def test_fit_with_early_stopping_and_history():
    model = wr.load_layers_model(layers_fixture("mlp"))
    data = load_npz("mlp")
    model.compile("sgd", "sparse_categorical_crossentropy", ["acc"])
    stop = wr.callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=1)
    hist = model.fit(data["x"][:64], data["y"][:64], epochs=10, batch_size=16, verbose=0, callbacks=[stop])
    assert hist.epoch == [0, 1] and stop.stopped_epoch == 1
    assert sorted(hist.history) == ["acc", "loss"] and len(hist.history["loss"]) == 2
    assert model.history is hist


# ------------------------------------------------------------------------ training behaviour
def test_dropout_only_in_training():
    model = wr.load_layers_model(layers_fixture("zoo_conv"))
    arrays = load_npz("zoo_conv")
    xs = [arrays["in:image"], arrays["in:signal"]]
    inference = model(xs)
    np.testing.assert_array_equal(model(xs)[0], inference[0])
    model._rng = np.random.default_rng(0)
    trained = model(xs, training=True)
    assert np.abs(trained[0] - inference[0]).max() > 1e-3       # dropout and batch statistics
    ctx = EagerCtx(training=True, rng=np.random.default_rng(1))
    mask = ctx.random_mask((200000,), 0.25)
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.75)}
    assert abs(mask.mean() - 1.0) < 0.01                          # inverted dropout keeps the mean


def test_frozen_batchnorm_runs_in_inference_mode():
    model = wr.load_layers_model(layers_fixture("mlp"))
    data = load_npz("mlp")
    bn = model.layers[1]
    stats = [w.numpy() for w in bn.weights]
    bn.trainable = False
    model.compile(wr.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.fit(data["x"][:64], data["y"][:64], epochs=1, batch_size=32, verbose=0)
    for w, s in zip(bn.weights, stats):
        np.testing.assert_array_equal(w.value, s)                  # no moving-stat update, no gradient step


def test_multi_output_fit_matches_keras():
    model = wr.load_layers_model(layers_fixture("multi_io"))
    km = k.models.model_from_json(json.dumps(json.loads((layers_fixture("multi_io") / "model.json").read_text())
                                             ["modelTopology"]["model_config"]))
    km.set_weights(model.get_weights())
    rng = np.random.default_rng(7)
    xa, xb = rng.standard_normal((40, 6)).astype(np.float32), rng.standard_normal((40, 6)).astype(np.float32)
    ya, yb = rng.standard_normal((40, 3)).astype(np.float32), (rng.random((40, 2)) < 0.5).astype(np.float32)
    compile_args = dict(loss=["mse", "binary_crossentropy"], loss_weights=[1.0, 0.5],
                        metrics={"head_b": ["accuracy"]})
    km.compile(k.optimizers.Adam(0.01), **compile_args)
    model.compile(wr.optimizers.Adam(0.01), **compile_args)
    h1 = km.fit([xa, xb], [ya, yb], epochs=2, batch_size=16, shuffle=False, verbose=0, validation_split=0.25)
    h2 = model.fit([xa, xb], [ya, yb], epochs=2, batch_size=16, shuffle=False, verbose=0, validation_split=0.25)
    assert sorted(h2.history) == sorted(h1.history)
    for key in h1.history:
        np.testing.assert_allclose(h2.history[key], h1.history[key], rtol=HIST_RTOL, err_msg=key)


def test_progress_output(capsys):
    model = wr.load_layers_model(layers_fixture("mlp"))
    data = load_npz("mlp")
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(data["x"][:32], data["y"][:32], epochs=2, verbose=0)
    assert capsys.readouterr().out == ""                       # verbose=0: silent
    model.fit(data["x"][:32], data["y"][:32], epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2") and "loss:" in lines[0] and "accuracy:" in lines[0]


VERBOSE_SCRIPT = """
import sys
import numpy as np
import wgpu_runtime as wr
model = wr.load_layers_model(sys.argv[1])
d = np.load(sys.argv[2])
kw = {} if sys.argv[3] == "default" else {"verbose": sys.argv[3] if sys.argv[3] == "auto" else int(sys.argv[3])}
model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
print("== fit", flush=True)
model.fit(d["x"][:32], d["y"][:32], epochs=2, batch_size=16, **kw)
print("== evaluate", flush=True)
model.evaluate(d["x"][:32], d["y"][:32], **kw)
print("== predict", flush=True)
model.predict(d["x"][:32], **kw)
print("== end", flush=True)
"""


@pytest.mark.parametrize("verbose", ["default", "auto", "1", "2", "0"])
def test_verbose_when_stdout_is_a_pipe(tmp_path, verbose):
    """Keras' verbose in a real process whose stdout is a pipe (a CI log): "auto" (the default of
    fit, evaluate and predict) is 1, and 1 without a terminal prints the bar's final state only:
    one line per epoch, as 2 does; 0 prints nothing. No terminal escape codes in the log."""
    import subprocess
    import sys

    data = load_npz("mlp")
    np.savez(tmp_path / "d.npz", x=data["x"], y=data["y"])
    out = subprocess.run([sys.executable, "-c", VERBOSE_SCRIPT, str(layers_fixture("mlp")), str(tmp_path / "d.npz"),
                          verbose], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    sections, current = {}, None
    for line in out.stdout.splitlines():
        if line.startswith("== "):
            current = sections.setdefault(line[3:], [])
        else:
            current.append(line)
    if verbose == "0":
        assert sections == {"fit": [], "evaluate": [], "predict": [], "end": []}, out.stdout
        return
    fit, evaluate, predict = sections["fit"], sections["evaluate"], sections["predict"]
    assert len(fit) == 2, out.stdout
    for epoch, line in enumerate(fit, 1):
        assert line.startswith(f"Epoch {epoch}/2 - 2/2 - "), line      # 32 samples in batches of 16
        assert "step - loss: " in line and " - accuracy: " in line, line
    assert len(evaluate) == 1 and evaluate[0].startswith("1/1 - ") and "loss: " in evaluate[0] \
        and "accuracy: " in evaluate[0], out.stdout
    assert len(predict) == 1 and predict[0].startswith("1/1 - ") and predict[0].endswith("/step"), out.stdout
    assert "\x1b" not in out.stdout and "\r" not in out.stdout


def test_verbose_rejects_unknown_values():
    model = wr.load_layers_model(layers_fixture("mlp"))
    data = load_npz("mlp")
    model.compile("adam", "sparse_categorical_crossentropy")
    for call in (lambda: model.fit(data["x"][:8], data["y"][:8], verbose=3),
                 lambda: model.predict(data["x"][:8], verbose="yes"),
                 lambda: model.evaluate(data["x"][:8], data["y"][:8], verbose=-1)):
        with pytest.raises(ValueError, match="verbose must be 'auto', 0, 1 or 2"):
            call()


# --------------------------------------------------------------------- saving and reading back
@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm"])
def test_fine_tuned_model_loads_back_everywhere(name, tmp_path):
    """Fine-tune a converted model here, save it, and read it back in this runtime, in real
    TensorFlow.js (Node) and in Keras through both converters' tfjs_layers_model -> keras (the
    official tensorflowjs one and this project's)."""
    from tfjs_harness import require_tfjs, tfjs_predict

    spec = TRAINING[name]
    data = load_npz(name)
    model = wr.load_layers_model(layers_fixture(name))
    model.compile(_our_optimizer(spec["optimizer"]), spec["loss"])
    model.fit(data["x"], data["y"], epochs=1, batch_size=32, verbose=0)
    x = data["x_test"]
    ours = model.predict(x)
    assert np.abs(ours - data["pred_initial"]).max() > 1e-3        # it did change
    saved = model.save(tmp_path / "tuned")
    assert saved.name == "model.json" and (tmp_path / "tuned" / "group1-shard1of1.bin").is_file()

    again = wr.load_layers_model(tmp_path / "tuned")
    np.testing.assert_array_equal(again(x), model(x))
    np.testing.assert_array_equal(again.predict(x), ours)

    require_tfjs()
    (tfjs_y,) = tfjs_predict(tmp_path / "tuned", [x], kind="layers")
    np.testing.assert_allclose(tfjs_y, ours, atol=1e-5, rtol=1e-5)

    from tensorflowjs.converters import converter

    h5 = tmp_path / "tuned.h5"
    converter.convert(["--input_format=tfjs_layers_model", "--output_format=keras",
                       str(tmp_path / "tuned" / "model.json"), str(h5)])
    keras_y = k.models.load_model(str(h5), compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(keras_y, ours, atol=1e-5, rtol=1e-5)

    from wgpu_runtime.convert.layers import convert_layers

    h5 = convert_layers(tmp_path / "tuned" / "model.json", tmp_path / "ours.h5", "tfjs_layers_model", "keras")
    keras_y = k.models.load_model(str(h5), compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(keras_y, ours, atol=1e-5, rtol=1e-5)


def test_train_on_batch_and_evaluate_on_both_devices():
    model = wr.load_layers_model(layers_fixture("lstm"))
    data = load_npz("lstm")
    model.compile(wr.optimizers.Adam(1e-3), "mse", ["mae"])
    logs = model.train_on_batch(data["x"][:16], data["y"][:16], return_dict=True)
    assert set(logs) == {"loss", "mae"}
    gpu = model.evaluate(data["x"][:40], data["y"][:40], return_dict=True)
    cpu = model.evaluate(data["x"][:40], data["y"][:40], return_dict=True, device="cpu")
    for key in gpu:
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-5)
