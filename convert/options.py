"""Conversion options, parsed once by the CLI and handed to both halves of the converter.

The contract between the CLI and the layers-model half (``convert/layers``)::

    from wgpu_runtime.convert.layers import convert_layers
    convert_layers(input_path, output_dir, input_format, output_format, options) -> Path

``options`` is a :class:`ConvertOptions`. The graph-model half reads the same object
(``convert/graph``). Nothing here imports TensorFlow.
"""
from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from typing import Callable

from .errors import ConversionError

logger = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 4194304
QUANTIZE_DTYPES = ("float16", "uint8", "uint16")   # the official converter's flag order
# --output_format's help (convert/cli.py): the default, and the way out for Keras models whose
# layers TF.js cannot run (convert/layers/topology.py refuses them with the same hint).
OUTPUT_FORMAT_HELP = ("default: tfjs_layers_model for Keras inputs, tfjs_graph_model for TF inputs, keras for "
                      "tfjs_layers_model. A Keras model with a layer TF.js's layers API cannot run (a GRU with "
                      "reset_after=True, Keras' default) converts with --output_format=tfjs_graph_model")


@dataclass
class ConvertOptions:
    # Quantization: dtype -> True (bare flag: every weight not matched by another dtype's
    # patterns) or a list of fnmatch patterns on weight names; as the official converter.
    quantization: dict[str, bool | list[str]] = field(default_factory=dict)
    weight_shard_size_bytes: int = DEFAULT_SHARD_SIZE
    split_weights_by_layer: bool = False
    metadata: dict | None = None          # userDefinedMetadata: {key: parsed JSON}
    overwrite: bool = False
    # graph models
    skip_op_check: bool = False
    strip_debug_ops: bool = True          # the official default (its flag cannot turn it off)
    control_flow_v2: bool = False
    output_node_names: list[str] | None = None
    use_structured_outputs_names: bool = False
    signature_name: str | None = None
    saved_model_tags: str | None = "serve"
    # progress(phase: str) -> context manager; the CLI gives a rich display on a terminal.
    progress: Callable | None = None
    unmatched_globs: list[str] = field(default_factory=list)   # filled by quantize_fn
    stderr: object = None                 # where warnings go (default: sys.stderr)

    def quantize_fn(self, names, aliases: dict | None = None) -> Callable[[str], str | None] | None:
        """name -> "uint8" | "uint16" | "float16" | None for the weights ``names``, matched as
        the official converter does (fnmatch; one catch-all dtype at most; two dtypes matching
        one weight is an error). ``aliases``: {name: the official converter's name for it},
        matched too, so globs written for its names keep working. None when nothing is
        quantized. Globs that match no weight are listed in ``self.unmatched_globs``."""
        if not self.quantization:
            return None
        names = list(names)
        aliases = aliases or {}
        self.unmatched_globs = []
        chosen: dict[str, str] = {}
        fallthrough = [d for d, p in self.quantization.items() if p is True]
        if len(fallthrough) > 1:
            raise ConversionError("more than one --quantize_* flag without patterns: "
                                  f"{', '.join('--quantize_' + d for d in fallthrough)} (one catch-all at most)")
        for dtype, patterns in self.quantization.items():
            if patterns is True:
                continue
            for pattern in patterns:
                matched = [n for n in names if fnmatch.fnmatch(n, pattern)
                           or (n in aliases and fnmatch.fnmatch(aliases[n], pattern))]
                if not matched:
                    self.unmatched_globs.append(f"--quantize_{dtype} {pattern}")
                for name in matched:
                    if chosen.get(name, dtype) != dtype:
                        raise ConversionError(f"weight {name!r} matches both --quantize_{chosen[name]} and "
                                              f"--quantize_{dtype}")
                    chosen[name] = dtype
        if fallthrough:
            for name in names:
                chosen.setdefault(name, fallthrough[0])
        return chosen.get

    def warn(self, text: str) -> None:
        """Something the user should know even when piped (a warning of the ``wgpu_runtime``
        logger: ``warning: text`` on stderr from the CLI)."""
        logger.warning(text)

    def info(self, text: str) -> None:
        """What the converter did: with the progress display on a terminal, else an info log line
        (shown by ``-v``)."""
        console = getattr(self.progress, "console", None)
        if console is not None:
            console.print(f"[dim]{text}[/]", highlight=False)
        else:
            logger.info(text)

    def phase(self, name: str):
        """A context manager around one phase of the conversion (progress display)."""
        if self.progress is None:
            import contextlib

            return contextlib.nullcontext()
        return self.progress(name)
