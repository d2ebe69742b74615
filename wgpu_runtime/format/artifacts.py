"""model.json plus weight shards: loading (validated, shard paths confined to the model folder)
and writing (official file names, published atomically)."""

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError
from . import publish
from ..io_utils import MODEL_JSON_MAX_BYTES, SHARD_MAX_BYTES, inside, read_regular
from .nodes import NodeDef, Signature, decode_node, decode_signature
from .weights import check_shard_order, decode_weights, encode_weights

FORMATS = ("graph-model", "layers-model")
DEFAULT_SHARD_SIZE = 4194304


@dataclass
class ModelArtifacts:
    """Everything in a TF.js model folder, weights decoded."""
    path: Path                         # the model json file
    format: str                        # "graph-model" | "layers-model"
    generated_by: str | None
    converted_by: str | None
    model_topology: dict               # raw JSON
    nodes: list[NodeDef]               # graph models: modelTopology.node decoded; [] for layers models
    functions: list[dict]              # raw modelTopology.library.function
    signature: Signature | None
    weights: dict[str, np.ndarray]     # decoded + dequantized, by manifest name
    weight_specs: list[dict]           # manifest entries as in the file, all groups in order
    user_defined_metadata: dict | None
    model_initializer: dict | None
    initializer_signature: Signature | None


# ---------------------------------------------------------------- loading

def load_artifacts(path) -> ModelArtifacts:
    """Load a model json file (any name), or the model.json in a folder, with its weights."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    model = read_json(path)
    topology = model.get("modelTopology")
    if not isinstance(topology, dict):
        raise ModelFormatError(f"{path}: required key 'modelTopology' (an object) is missing")
    fmt = format_of(model, topology, path)
    weights, specs = _load_weights(path, model.get("weightsManifest", []))
    nodes, functions = [], []
    if fmt == "graph-model":
        raw_nodes = topology.get("node", [])
        library = topology.get("library", {})
        if not isinstance(raw_nodes, list) or not isinstance(library, dict):
            raise ModelFormatError(f"{path}: modelTopology 'node' must be a list and 'library' an object")
        nodes = [decode_node(n, f"{path}: node {i}") for i, n in enumerate(raw_nodes)]
        functions = library.get("function", [])
    return ModelArtifacts(
        path=path, format=fmt,
        generated_by=model.get("generatedBy"), converted_by=model.get("convertedBy"),
        model_topology=topology, nodes=nodes, functions=functions,
        signature=_signature(model, path),
        weights=weights, weight_specs=specs,
        user_defined_metadata=model.get("userDefinedMetadata"),
        model_initializer=model.get("modelInitializer"),
        initializer_signature=_optional_signature(model, "initializerSignature", path),
    )


def read_json(path: Path) -> dict:
    raw = read_regular(path, "model file", MODEL_JSON_MAX_BYTES)
    try:
        model = json.loads(raw)
    except RecursionError:
        raise ModelFormatError(f"{path}: malformed JSON: nested too deeply") from None
    except json.JSONDecodeError as e:
        raise ModelFormatError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ModelFormatError(f"{path}: malformed JSON: not valid text ({e.reason})") from None
    if not isinstance(model, dict):
        raise ModelFormatError(f"{path}: the model JSON must be an object, got {type(model).__name__}")
    return model


def format_of(model: dict, topology: dict, path: Path) -> str:
    fmt = model.get("format")
    if fmt is None:
        if "model_config" in topology:
            return "layers-model"
        if "node" in topology:
            return "graph-model"
        raise ModelFormatError(f"{path}: no 'format' key, and modelTopology has neither 'model_config' nor 'node'")
    if fmt not in FORMATS:
        raise ModelFormatError(f"{path}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    return fmt


def _signature(model: dict, path: Path) -> Signature | None:
    """The model's signature as TF.js takes it (graph_model.ts loadWithWeightMap):
    ``userDefinedMetadata.signature`` when present, else the top-level ``signature``."""
    meta = model.get("userDefinedMetadata")
    if isinstance(meta, dict) and meta.get("signature") is not None:
        return decode_signature(meta["signature"], f"{path}: userDefinedMetadata.signature")
    return _optional_signature(model, "signature", path)


def _optional_signature(model: dict, key: str, path: Path) -> Signature | None:
    raw = model.get(key)
    return None if raw is None else decode_signature(raw, f"{path}: {key}")


def _load_weights(path: Path, manifest) -> tuple[dict[str, np.ndarray], list[dict]]:
    if not isinstance(manifest, list):
        raise ModelFormatError(f"{path}: 'weightsManifest' must be a list of groups")
    weights, specs = {}, []
    for g, group in enumerate(manifest, 1):
        where = f"{path}: weights group {g}"
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list) \
                or not isinstance(group.get("weights"), list):
            raise ModelFormatError(f"{where}: needs 'paths' and 'weights' lists")
        check_shard_order(group["paths"], where)
        shards = [(p, _read_shard(path, p, where)) for p in group["paths"]]
        sizes = ", ".join(f"{p} {len(data)} bytes" for p, data in shards)
        for name, value in decode_weights([d for _, d in shards], group["weights"], f"{where} ({sizes})").items():
            if name in weights:
                raise ModelFormatError(f"{where}: duplicate weight name {name!r}")
            weights[name] = value
        specs += group["weights"]
    return weights, specs


def _read_shard(model_path: Path, rel, where: str) -> bytes:
    """Read a shard named relative to the model file's folder, refusing paths that leave it."""
    full = inside(model_path.parent, rel, "shard", where)
    try:
        return read_regular(full, f"weight shard {rel!r}", SHARD_MAX_BYTES)
    except ModelFormatError as e:
        raise ModelFormatError(f"{where}: {e}") from None


# ---------------------------------------------------------------- writing

def write_artifacts(folder, model_json: dict, groups, shard_size: int | None = DEFAULT_SHARD_SIZE,
                    quantize=None, model_file: str = "model.json", overwrite: bool = False) -> Path:
    """Write `model_json` plus weight shards into `folder`; returns the model file's path.

    `groups` is a list of weight groups, each [(name, array), ...]; each group's bytes are cut
    into `groupI-shardJofN.bin` files of `shard_size` bytes (None: one shard). `weightsManifest`
    is set from the groups. `quantize`: None or callable(name) -> "uint8"|"uint16"|"float16"|None.
    Everything is written into a temporary folder beside `folder`, then renamed into place; an
    existing non-empty `folder` is replaced only with `overwrite=True`.
    """
    folder = Path(folder)
    if Path(model_file).name != model_file or model_file in ("", ".", ".."):
        raise ValueError(f"model_file must be a plain file name, got {model_file!r}")
    if shard_size is not None and (not isinstance(shard_size, int) or shard_size <= 0):
        raise ValueError(f"shard_size must be a positive integer or None, got {shard_size!r}")
    files, manifest, seen = {}, [], set()
    for g, group in enumerate(groups, 1):
        data, entries = encode_weights(group, quantize)
        for e in entries:
            if e["name"] in seen:
                raise ModelFormatError(f"duplicate weight name {e['name']!r}")
            seen.add(e["name"])
        size = shard_size or max(len(data), 1)
        count = math.ceil(len(data) / size)
        paths = [f"group{g}-shard{j}of{count}.bin" for j in range(1, count + 1)]
        files.update((p, memoryview(data)[j * size:(j + 1) * size]) for j, p in enumerate(paths))
        manifest.append({"paths": paths, "weights": entries})
    files[model_file] = json.dumps({**model_json, "weightsManifest": manifest}).encode("utf-8")
    _publish(folder, files, overwrite)
    return folder / model_file


def _publish(folder: Path, files: dict[str, bytes], overwrite: bool) -> None:
    """Write `files` into a fresh temporary folder next to `folder`, then swap it into place
    (format/publish.py: crash-safe; leftovers of killed writers are cleaned up first)."""
    publish.recover(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder} exists and is not empty (pass overwrite=True to replace it)")
    tmp = publish.temp_beside(folder)
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
        publish.swap_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
