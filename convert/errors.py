"""The converter's user-facing error: one clear line, a non-zero exit, never a traceback.

Both halves of the converter (graph models: ``convert/graph``; layers models: ``convert/layers``)
raise :class:`ConversionError` for bad inputs (a missing file, a corrupt .h5, a SavedModel
without the asked signature, an unknown format pair, unsupported ops...). The CLI
(``python -m wgpu_runtime convert``) prints ``error: <message>`` and exits with status 2 for a usage
problem (a flag, a missing path, an output in the way) or 3 for a model it cannot convert
(wgpu_runtime/exit_codes.py).
"""
from wgpu_runtime.errors import WgpuRuntimeError


class ConversionError(WgpuRuntimeError):
    """A model cannot be converted; the message names the input and the reason."""
