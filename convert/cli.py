"""``python -m wgpu_runtime convert`` (also ``wgpu-runtime convert``): tensorflowjs_converter's
flags and formats, without its traps.

    wgpu-runtime convert --input_format=keras model.h5 web_model/
    wgpu-runtime convert --input_format=tf_saved_model --quantize_uint8 "conv*" saved_model/ web_model/

Format pairs (input -> output):
  graph models (convert/graph):  tf_saved_model, tf_hub, tf_frozen_model, keras (Keras 3 and
      tf_keras .h5), keras_keras (.keras), tfjs_layers_model  ->  tfjs_graph_model
  layers models / Keras files (convert/layers, ``convert_layers``):
      keras, keras_keras, keras_saved_model -> tfjs_layers_model;
      tfjs_layers_model -> keras, keras_keras, keras_saved_model, tfjs_layers_model

The output goes to a temporary folder renamed into place at the end; an existing non-empty
output needs --overwrite. Errors are one ``error:`` line: exit status 2 for a bad flag or a missing
``[convert]`` extra (TensorFlow, h5py), 3 for a model that cannot be converted (see
wgpu_runtime/exit_codes.py).
TensorFlow is imported only when a conversion runs (after TF_ENABLE_ONEDNN_OPTS=0 is set, so
Grappler does not fuse activations TF.js cannot run), through ``tensorflow_loader`` so that it
also works in a process where the runtime has already opened an OpenGL adapter.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

from wgpu_runtime import logs
from wgpu_runtime.dtypes import quantization_dtype
from wgpu_runtime.errors import WgpuRuntimeError
from wgpu_runtime.exit_codes import EPILOG, MissingExtraError, UsageError, exit_code

from . import argv as argv_mod
from .errors import ConversionError
from .options import DEFAULT_SHARD_SIZE, OUTPUT_FORMAT_HELP, QUANTIZE_DTYPES, ConvertOptions
from .tensorflow_loader import import_tensorflow

KERAS, KERAS_KERAS, KERAS_SAVED_MODEL = "keras", "keras_keras", "keras_saved_model"
TF_SAVED_MODEL, TF_HUB, TF_FROZEN = "tf_saved_model", "tf_hub", "tf_frozen_model"
TFJS_LAYERS, TFJS_GRAPH = "tfjs_layers_model", "tfjs_graph_model"
INPUT_FORMATS = (KERAS, KERAS_KERAS, KERAS_SAVED_MODEL, TF_SAVED_MODEL, TF_HUB, TF_FROZEN, TFJS_LAYERS)
OUTPUT_FORMATS = (TFJS_GRAPH, TFJS_LAYERS, KERAS, KERAS_KERAS, KERAS_SAVED_MODEL)

GRAPH_PAIRS = {(f, TFJS_GRAPH) for f in (TF_SAVED_MODEL, TF_HUB, TF_FROZEN, KERAS, KERAS_KERAS, TFJS_LAYERS)}
LAYERS_PAIRS = {(KERAS, TFJS_LAYERS), (KERAS_KERAS, TFJS_LAYERS), (KERAS_SAVED_MODEL, TFJS_LAYERS),
                (TFJS_LAYERS, KERAS), (TFJS_LAYERS, KERAS_KERAS), (TFJS_LAYERS, KERAS_SAVED_MODEL),
                (TFJS_LAYERS, TFJS_LAYERS)}
DEFAULT_OUTPUT = {KERAS: TFJS_LAYERS, KERAS_KERAS: TFJS_LAYERS, KERAS_SAVED_MODEL: TFJS_LAYERS,
                  TF_SAVED_MODEL: TFJS_GRAPH, TF_HUB: TFJS_GRAPH, TF_FROZEN: TFJS_GRAPH, TFJS_LAYERS: KERAS}

VALUE_FLAGS = {"--input_format", "--output_format", "--signature_name", "--saved_model_tags",
               "--quantization_bytes", "--weight_shard_size_bytes", "--output_node_names", "--metadata"}
PATTERN_FLAGS = {f"--quantize_{d}" for d in QUANTIZE_DTYPES}
BOOL_FLAGS = {"--control_flow_v2", "--strip_debug_ops", "--use_structured_outputs_names", "--experiments"}
# Modules of the [convert] extra: a conversion without one of them names the extra to install
EXTRA_MODULES = {"tensorflow", "tf_keras", "keras", "h5py", "tensorflowjs", "tensorflow_hub", "absl", "google"}

logger = logging.getLogger(__name__)


class ConvertUsageError(ConversionError, UsageError):
    """A flag, a flag combination or a path argument is wrong (exit status 2)."""


class ConvertExtraMissing(MissingExtraError, ConversionError):
    """TensorFlow (or h5py for a .h5 input) is not installed (exit status 2)."""


def _module_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):      # a broken install, or an import blocked by a meta path finder
        return True


def require_extra(input_format: str, output_format: str) -> None:
    """Name the [convert] extra before any work when a module the conversion surely needs is
    missing: TensorFlow for graph models, h5py for Keras HDF5 (read without TensorFlow for a
    layers model). Others, imported deeper, are caught as they fail (``_dispatch``)."""
    needed = (["tensorflow"] if (input_format, output_format) in GRAPH_PAIRS else []) \
        + (["h5py"] if input_format == KERAS else [])
    missing = [m for m in needed if _module_missing(m)]
    if missing:
        raise ConvertExtraMissing(missing, "convert", "converting")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wgpu-runtime convert", allow_abbrev=False, epilog=EPILOG,
        description="Convert a Keras / TensorFlow model to the TensorFlow.js format (tensorflowjs_converter's "
                    "flags). Needs TensorFlow: pip install wgpu-runtime[convert].")
    p.add_argument("input_path", nargs="?", help="the model: .h5 / .keras file, SavedModel or hub folder, "
                   "frozen .pb, or a TF.js layers model.json")
    p.add_argument("output_path", nargs="?", help="the output folder (a file for Keras outputs)")
    p.add_argument("--input_format", choices=INPUT_FORMATS, default=TF_SAVED_MODEL,
                   help="the input's format (default: tf_saved_model)")
    p.add_argument("--output_format", choices=OUTPUT_FORMATS, help=OUTPUT_FORMAT_HELP)
    p.add_argument("--signature_name", help="SavedModel / hub signature (default: serving_default; "
                   "tf_hub: default, then serving_default)")
    p.add_argument("--saved_model_tags", default="serve", help="comma-separated MetaGraph tags (default: serve)")
    for dtype in QUANTIZE_DTYPES:
        p.add_argument(f"--quantize_{dtype}", nargs="?", const=True, default=None, metavar="GLOBS",
                       help=f"quantize float32 weights to {dtype}: comma-separated fnmatch globs on weight "
                            "names; without a value, every weight")
    p.add_argument("--quantization_bytes", type=int, choices=(1, 2), help="deprecated: 1 = uint8, 2 = uint16")
    p.add_argument("--split_weights_by_layer", action="store_true",
                   help="one weight group (and shard files) per layer")
    p.add_argument("--weight_shard_size_bytes", type=int, default=None,
                   help=f"shard size in bytes (default {DEFAULT_SHARD_SIZE})")
    p.add_argument("--skip_op_check", action="store_true", help="write the model even if it has ops the "
                   "runtime lacks")
    for flag, default, text in (("strip_debug_ops", True, "strip Assert/CheckNumerics/Print (default true)"),
                                ("control_flow_v2", False, "keep v2 control flow (While/If with functions)"),
                                ("use_structured_outputs_names", False, "outputs keyed as the signature's "
                                 "structured outputs (userDefinedMetadata.structuredOutputKeys)"),
                                ("experiments", False, "accepted for compatibility; no effect")):
        p.add_argument(f"--{flag}", nargs="?", const=True, default=default, type=argv_mod.parse_bool,
                       metavar="BOOL", help=text)
    p.add_argument("--output_node_names", help="comma-separated output nodes (tf_frozen_model)")
    p.add_argument("--metadata", help="user metadata: key:file.json[,key2:file2.json]")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output")
    p.add_argument("--version", "-v", dest="show_version", action="store_true",
                   help="print the versions of wgpu-runtime, TensorFlow and Keras (-v is --version, as in "
                        "tensorflowjs_converter)")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default) and the converter's info log")
    p.add_argument("-q", "--quiet", action="store_true", help="errors only: no warnings")
    return p


def parse_args(tokens):
    tokens = list(tokens)
    if any(t in ("-h", "--help") for t in tokens):
        build_parser().parse_args(["--help"])
    return build_parser().parse_args(argv_mod.resolve(tokens, VALUE_FLAGS, PATTERN_FLAGS, BOOL_FLAGS))


def options_from_args(args, output_format: str) -> ConvertOptions:
    opts = ConvertOptions(
        quantization=_quantization(args), split_weights_by_layer=args.split_weights_by_layer,
        metadata=_metadata(args.metadata), overwrite=args.overwrite, skip_op_check=args.skip_op_check,
        strip_debug_ops=args.strip_debug_ops, control_flow_v2=args.control_flow_v2,
        output_node_names=[n.strip() for n in args.output_node_names.split(",") if n.strip()]
        if args.output_node_names else None,
        use_structured_outputs_names=args.use_structured_outputs_names, signature_name=args.signature_name,
        saved_model_tags=args.saved_model_tags)
    if args.weight_shard_size_bytes is not None:
        if output_format not in (TFJS_GRAPH, TFJS_LAYERS):
            raise ConvertUsageError("--weight_shard_size_bytes applies to tfjs_layers_model and tfjs_graph_model "
                                  f"outputs only, not {output_format}")
        if args.weight_shard_size_bytes <= 0:
            raise ConvertUsageError(f"--weight_shard_size_bytes must be a positive integer, got "
                                  f"{args.weight_shard_size_bytes}")
        opts.weight_shard_size_bytes = args.weight_shard_size_bytes
    return opts


def _quantization(args) -> dict:
    q = {}
    if args.quantization_bytes:
        if any(getattr(args, f"quantize_{d}") is not None for d in QUANTIZE_DTYPES):
            raise ConvertUsageError("--quantization_bytes cannot be combined with --quantize_* flags")
        q[quantization_dtype(args.quantization_bytes)] = True
    for dtype in QUANTIZE_DTYPES:
        value = getattr(args, f"quantize_{dtype}")
        if value is True:
            q[dtype] = True
        elif value is not None:
            patterns = [p for p in value.split(",") if p]
            if not patterns:
                raise ConvertUsageError(f"--quantize_{dtype} needs globs or no value at all, got {value!r}")
            q[dtype] = patterns
    return q


def _metadata(arg) -> dict | None:
    if not arg:
        return None
    out = {}
    for item in arg.split(","):
        key, sep, path = item.partition(":")
        if not sep or not key or not path:
            raise ConvertUsageError(f"--metadata takes key:file.json (comma-separated), got {item!r}")
        try:
            out[key] = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConvertUsageError(f"--metadata {key}: file not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConvertUsageError(f"--metadata {key}: {path} is not readable JSON ({e})") from None
    return out


def _check_paths(args, input_format: str, output_format: str) -> None:
    if not args.input_path or not args.output_path:
        raise ConvertUsageError("give the input path and the output path (see --help)")
    src, dst = Path(args.input_path), Path(args.output_path)
    if not src.exists():
        raise ConvertUsageError(f"input not found: {src}")
    if src.resolve() == dst.resolve() or dst.resolve() in src.resolve().parents:
        raise ConvertUsageError(f"the output {dst} would overwrite the input {src}")
    if output_format in (TFJS_GRAPH, TFJS_LAYERS):
        if dst.exists() and not dst.is_dir():
            raise ConvertUsageError(f"output {dst} exists and is not a folder")
        if dst.is_dir() and any(dst.iterdir()) and not args.overwrite:
            raise ConvertUsageError(f"output folder {dst} exists and is not empty (pass --overwrite to replace it)")
    elif dst.exists() and not args.overwrite:
        raise ConvertUsageError(f"output {dst} exists (pass --overwrite to replace it)")


def _validate(args, input_format: str, output_format: str) -> None:
    pair = (input_format, output_format)
    if pair not in GRAPH_PAIRS and pair not in LAYERS_PAIRS:
        raise ConvertUsageError(f"unsupported conversion: --input_format={input_format} to "
                              f"--output_format={output_format}")
    if input_format == TF_FROZEN and not args.output_node_names:
        raise ConvertUsageError("--output_node_names is required for --input_format=tf_frozen_model")
    if args.signature_name and input_format not in (TF_SAVED_MODEL, TF_HUB):
        raise ConvertUsageError(f"--signature_name applies to tf_saved_model and tf_hub inputs, not {input_format}")
    if args.control_flow_v2 and output_format != TFJS_GRAPH:
        raise ConvertUsageError(f"--control_flow_v2 applies to tfjs_graph_model outputs, not {output_format}")


def convert(tokens) -> int:
    args = parse_args(tokens)
    if args.quiet:
        logs.configure(-1)
    elif args.verbose and logging.getLogger(logs.ROOT).getEffectiveLevel() > logging.INFO:
        logs.configure(1)
    if args.show_version:
        return _print_versions()
    input_format = args.input_format
    output_format = args.output_format or DEFAULT_OUTPUT[input_format]
    _validate(args, input_format, output_format)
    options = options_from_args(args, output_format)
    _check_paths(args, input_format, output_format)
    # Before TensorFlow is imported: oneDNN's Grappler rewrites fuse Sigmoid/Tanh into
    # _FusedMatMul (TF.js cannot run it). convert/optimize guards against it anyway.
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .progress import native_stderr_captured

    src, dst = Path(args.input_path), Path(args.output_path)
    if args.verbose:
        return _run(src, dst, input_format, output_format, options, sys.stderr)
    with native_stderr_captured() as stderr:
        return _run(src, dst, input_format, output_format, options, stderr)


def _run(src, dst, input_format, output_format, options, stderr) -> int:
    from .progress import for_terminal

    options.stderr = stderr
    progress = for_terminal(stderr)
    with logs.stream_to(stderr):        # log lines reach the real stderr while TF's native logs are captured
        if progress is None:
            out = _dispatch(src, dst, input_format, output_format, options)
            logger.info("wrote %s", out)
            return 0
        options.progress = progress
        with progress:
            out = _dispatch(src, dst, input_format, output_format, options)
        progress.console.print(f"wrote {out}")
    return 0


def _dispatch(src: Path, dst: Path, input_format: str, output_format: str, options: ConvertOptions) -> Path:
    require_extra(input_format, output_format)
    try:
        import_tensorflow()     # before the converter's modules, isolated from Mesa's LLVM (tensorflow_loader.py)
        if (input_format, output_format) in GRAPH_PAIRS:
            from .graph import convert_graph

            return convert_graph(src, dst, input_format, options)
        from .layers import convert_layers

        return convert_layers(src, dst, input_format, output_format, options)
    except ModuleNotFoundError as e:
        missing = (e.name or "").split(".")[0]
        if missing not in EXTRA_MODULES:
            raise
        raise ConvertExtraMissing(missing, "convert", "converting") from None


def _print_versions() -> int:
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("wgpu-runtime", "tensorflow", "tf-keras", "keras"):
        try:
            print(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            print(f"{pkg} (not installed)")
    return 0


def add_subcommand(sub):
    # The convert flags are parsed by build_parser() after the optional-value flags are
    # resolved (convert/argv.py); this sub-parser only collects the raw tokens ('+' prefix:
    # it treats no token as an option of its own).
    p = sub.add_parser("convert", prefix_chars="+", add_help=False,
                       help="convert a Keras/TF model to the TF.js format (tensorflowjs_converter's flags)")
    p.add_argument("tokens", nargs=argparse.REMAINDER)

    def run(args) -> int:
        return convert(args.tokens)
    return "convert", run


def main(argv=None) -> int:
    logs.configure(0)
    try:
        return convert(sys.argv[1:] if argv is None else argv)
    except WgpuRuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return exit_code(e)
    finally:
        logs.reset()


if __name__ == "__main__":
    sys.exit(main())
