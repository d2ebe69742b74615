"""Write a TF.js layers model (model.json + shards) from a Keras config and weight groups."""
from __future__ import annotations

from pathlib import Path

from wgpu_runtime.errors import ModelFormatError
from wgpu_runtime.format import write_artifacts

from ..errors import ConversionError
from ..options import ConvertOptions


def converted_by() -> str:
    """Same string as the graph half's (convert/graph/write.py); TF.js reads nothing from it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"wgpu-runtime converter v{version('wgpu-runtime')}"
    except PackageNotFoundError:
        return "wgpu-runtime converter"


def write_layers_model(output_dir, topology: dict, layers, options: ConvertOptions,
                       metadata: dict | None = None) -> Path:
    """``topology``: modelTopology (keras_version, backend, model_config, training_config?);
    ``layers``: [(layer name, [(weight name, array), ...]), ...] in manifest order.
    One weight group, or one per layer with ``split_weights_by_layer``. Returns model.json's path."""
    if options.split_weights_by_layer:
        groups = [weights for _, weights in layers if weights]
    else:
        groups = [[w for _, weights in layers for w in weights]]
    names = [name for group in groups for name, _ in group]
    keras_version = topology.get("keras_version")
    model_json = {
        "format": "layers-model",
        "generatedBy": f"keras v{keras_version}" if keras_version else None,
        "convertedBy": converted_by(),
    }
    if metadata:
        model_json["userDefinedMetadata"] = metadata
    model_json["modelTopology"] = topology
    try:
        return write_artifacts(Path(output_dir), model_json, groups, shard_size=options.weight_shard_size_bytes,
                               quantize=options.quantize_fn(names), overwrite=options.overwrite)
    except FileExistsError as e:
        raise ConversionError(f"{e} (pass --overwrite to replace it)") from None
    except ModelFormatError as e:           # duplicate weight names, a weight that cannot be quantized
        raise ConversionError(f"cannot write {output_dir}: {e}") from None
