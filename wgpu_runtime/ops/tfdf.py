"""TensorFlow Decision Forests (host): SimpleMLCreateModelResource makes a model handle,
SimpleMLLoadModelFromPathWithHandle loads a Yggdrasil Decision Forests (YDF) model into it, and
SimpleMLInferenceOpWithHandle runs it on packed feature banks.

How the official converter ships a TF-DF model: the model's ``modelInitializer`` graph creates
the handle and loads the model from a path constant (the *converting* machine's absolute
``<saved_model>/assets/`` path, useless here); the YDF files of the SavedModel's ``assets/`` are
written to ``assets.zip`` next to model.json. TF.js (@tensorflow/tfjs-tfdf) ignores the path and
loads ``assets.zip`` relative to model.json; so do we: the model is read from ``assets.zip``
(or an unzipped ``assets/`` folder) in the model's folder, never from outside it, selecting the
files by the load op's ``file_prefix`` attribute (a zip may hold several models).

Inference follows TF-DF's kernel (tensorflow_decision_forests/tensorflow/ops/inference/kernel.cc):
inputs ``numerical_features`` [batch, n] float (NaN = missing), ``boolean_features`` [batch, n]
float (>= 0.5 true, NaN missing), ``categorical_int_features`` [batch, n] int (-1 missing, out
of range -> 0 = out-of-vocabulary), the categorical-set ragged banks (values, row splits dim 1
and 2), and the model handle; each bank's columns are the model's input features of that kind,
in the model's input feature order. Outputs ``dense_predictions`` [batch, dense_output_dim]
float32 ([1 - p, p] for a binary classifier, class probabilities, or the regression / ranking
value) and ``dense_col_representation`` [dense_output_dim] strings (class names, or "").

The model runs on the host with the ``ydf`` package, imported when a model is loaded (the
runtime imports neither TensorFlow nor ydf otherwise).
"""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import GraphError, ModelFormatError
from ..io_utils import inside
from .common import F, I, S
from .runtime import runtime_op, shared_resource, typed_obj


class TFDFModel:
    """A model handle's contents: empty until SimpleMLLoadModelFromPathWithHandle fills it."""

    def __init__(self):
        self.model = None          # the ydf model
        self.banks: dict[str, list] = {}
        self.classes: list[str] = []

    def load(self, folder: Path, file_prefix: str) -> None:
        try:
            import ydf  # noqa: PLC0415 (lazy: only TF-DF models need it)
        except ImportError as e:
            raise GraphError("running a TensorFlow Decision Forests model needs the ydf package: "
                             "pip install ydf") from e
        level = ydf.verbose(0)      # ydf prints its loading logs on stdout
        try:
            with tempfile.TemporaryDirectory(prefix="wgpu-tfdf-") as tmp:
                src = _model_files(folder, file_prefix, Path(tmp))
                self.model = ydf.load_model(str(src), ydf.ModelIOOptions(file_prefix=file_prefix or None))
        finally:
            ydf.verbose(level)
        sem = ydf.Semantic
        kind = {sem.NUMERICAL: "numerical", sem.DISCRETIZED_NUMERICAL: "numerical", sem.BOOLEAN: "boolean",
                sem.CATEGORICAL: "categorical", sem.CATEGORICAL_SET: "categorical_set"}
        self.banks = {"numerical": [], "boolean": [], "categorical": [], "categorical_set": []}
        for f in self.model.input_features():
            if f.semantic not in kind:
                raise ValueError(f"TF-DF model feature {f.name!r} has an unsupported semantic {f.semantic}")
            self.banks[kind[f.semantic]].append(f.name)
        self.classification = self.model.task() == ydf.Task.CLASSIFICATION
        self.classes = [str(c) for c in self.model.label_classes()] if self.classification else []

    def predict(self, num, boo, cat, set_values, splits1, splits2, dense_dim: int):
        if self.model is None:
            raise ValueError("the TF-DF model handle was never loaded (the model's initializer did not run "
                             "SimpleMLLoadModelFromPathWithHandle)")
        banks = {"numerical": np.asarray(num, np.float32), "boolean": np.asarray(boo, np.float32),
                 "categorical": np.asarray(cat, np.int64)}
        for k, names in banks.items():
            want = len(self.banks[k])
            if names.ndim != 2 or names.shape[1] != want:
                raise ValueError(f"SimpleMLInferenceOpWithHandle: the {k} feature bank has shape "
                                 f"{names.shape}, the model has {want} {k} features")
        sizes = [b.shape[0] for b in banks.values()] + [int(np.size(splits2)) - 1]
        batch = max([s for s in sizes if s > 0], default=0)
        if any(s > 0 and s != batch for s in sizes):
            raise ValueError(f"SimpleMLInferenceOpWithHandle: inconsistent batch sizes {sizes}")
        if self.banks["categorical_set"]:
            raise ValueError("TF-DF categorical-set features are not supported by this runtime "
                             f"(features {self.banks['categorical_set']})")
        data: dict = {}
        for j, name in enumerate(self.banks["numerical"]):
            data[name] = banks["numerical"][:, j]
        for j, name in enumerate(self.banks["boolean"]):
            col = banks["boolean"][:, j]
            data[name] = np.where(np.isnan(col), np.nan, (col >= 0.5).astype(np.float32))
        spec = self.model.data_spec()
        for j, name in enumerate(self.banks["categorical"]):
            col = banks["categorical"][:, j]
            n = next(c.categorical.number_of_unique_values for c in spec.columns if c.name == name)
            data[name] = np.where((col < -1) | (col >= n), 0, col).astype(np.int32)   # as kernel.cc
        # ydf fills the columns a prediction does not need (the label...) from the data; an
        # integerized one may not be empty, so give each a placeholder value
        used = set(data)
        for c in spec.columns:
            if c.name not in used:
                data[c.name] = np.zeros(batch, np.int32 if c.type == 4 else np.float32)  # 4: CATEGORICAL
        if batch == 0:
            return np.zeros((0, dense_dim), np.float32), self._cols(dense_dim)
        pred = np.asarray(self.model.predict(data), np.float32).reshape(batch, -1)
        if self.classification and pred.shape[1] == 1 and dense_dim == 2:
            p = np.clip(pred[:, 0], 0.0, 1.0)
            pred = np.stack([1.0 - p, p], axis=1)
        if pred.shape[1] != dense_dim:
            raise ValueError(f"SimpleMLInferenceOpWithHandle: the model predicts {pred.shape[1]} values per "
                             f"example, dense_output_dim is {dense_dim}")
        return pred.astype(np.float32), self._cols(dense_dim)

    def _cols(self, dense_dim: int) -> np.ndarray:
        names = self.classes if self.classification else []
        return np.array([names[i] if i < len(names) else "" for i in range(dense_dim)], dtype=object)


def _model_files(folder: Path, prefix: str, tmp: Path) -> Path:
    """The folder holding the YDF files named ``prefix*``: ``assets/`` next to model.json, or
    ``assets.zip`` extracted into ``tmp``: only top-level members (TF-DF writes a flat folder), so
    no member name can point outside ``tmp``. Neither, nor any file in ``assets/``, may lead outside
    the model folder (a symlink is resolved first)."""
    where = f"the TF-DF model in {folder}"
    assets = inside(folder, "assets", "assets", where)
    if assets.is_dir() and any(p.name.startswith(prefix) for p in assets.iterdir()):
        for p in assets.iterdir():
            inside(folder, f"assets/{p.name}", "assets file", where)
        return assets
    archive = inside(folder, "assets.zip", "assets archive", where)
    if not archive.is_file():
        raise ModelFormatError(f"the TF-DF model's files are missing: expected {archive} (written by the "
                                "official converter next to model.json) or an assets/ folder")
    with zipfile.ZipFile(archive) as z:
        found = False
        for info in z.infolist():
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            parts = [p for p in parts if p not in (".", "")]
            if info.is_dir() or not parts or not parts[-1].startswith(prefix):
                continue
            if len(parts) > 1 or parts[0] == "..":
                raise ModelFormatError(f"{archive}: unexpected model file name {info.filename!r}")
            (tmp / parts[0]).write_bytes(z.read(info))
            found = True
    if not found:
        raise ModelFormatError(f"{archive} holds no model files with the prefix {prefix!r}")
    return tmp


def _model_folder(rt) -> Path:
    model = getattr(rt, "model", None)
    path = getattr(getattr(model, "artifacts", None), "path", None)
    if path is None:
        raise ValueError("SimpleMLLoadModelFromPathWithHandle runs only in a loaded model "
                         "(its files are found next to model.json)")
    path = Path(path)
    return path if path.is_dir() else path.parent


def _handle(rt, t) -> TFDFModel:
    return typed_obj(rt, t, TFDFModel, "a TF-DF model handle")


def _create(rt, attrs, ins):
    return [rt.opaque(shared_resource(rt, "tfdf", attrs, TFDFModel), "resource")]


def _load(rt, attrs, ins):
    # ins[1] (the model path) names the converting machine's SavedModel assets: not used
    model = _handle(rt, ins[0])
    if model.model is None:
        model.load(_model_folder(rt), attrs.get("file_prefix") or "")
    return []


def _infer(rt, attrs, ins):
    if len(ins) != 7:
        raise ValueError(f"SimpleMLInferenceOpWithHandle takes 7 inputs, got {len(ins)}")
    model = _handle(rt, ins[6])
    pred, cols = model.predict(*(rt.host(x) for x in ins[:6]), int(attrs.get("dense_output_dim") or 1))
    return [rt.value(pred), rt.value(cols)]


def _infer_shape(attrs, ins):
    dim = int(attrs.get("dense_output_dim") or 1)
    sizes = [ins[k].shape[0] for k in (0, 1, 2) if ins[k].rank == 2]
    sizes.append(ins[5].shape[0] - 1 if ins[5].rank == 1 else 0)
    batch = max([s for s in sizes if s > 0], default=0)
    return [((batch, dim), F), ((dim,), S)]


runtime_op("SimpleMLCreateModelResource", impl=_create,
           shape=lambda attrs, ins: [((), "resource")], dtypes=(F, I))
runtime_op("SimpleMLLoadModelFromPathWithHandle", impl=_load, shape=lambda attrs, ins: [],
           dtypes=(S,))
runtime_op("SimpleMLInferenceOpWithHandle", impl=_infer, shape=_infer_shape, dtypes=(F, I))
