"""Exceptions with messages that name the problem (file, node, op, input)."""


class WgpuRuntimeError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelFormatError(WgpuRuntimeError, ValueError):
    """model.json or a weight shard is malformed, missing, truncated or unsafe."""


class UnsupportedOpError(WgpuRuntimeError):
    """The model uses ops the registry does not have. ``missing`` maps op -> node names."""

    def __init__(self, missing: dict[str, list[str]]):
        self.missing = dict(sorted(missing.items()))
        lines = [f"  {op}: used by {', '.join(nodes[:5])}" + (f" (+{len(nodes) - 5} more)" if len(nodes) > 5 else "")
                 for op, nodes in self.missing.items()]
        super().__init__(f"Unsupported ops ({len(self.missing)}): {', '.join(self.missing)}\n" + "\n".join(lines))


class InputError(WgpuRuntimeError, ValueError):
    """Inputs given to predict/execute do not match the model (name, shape, dtype)."""


class GraphError(WgpuRuntimeError):
    """A graph cannot be planned: bad attribute, shapes that do not agree, a device limit."""

    def __init__(self, message: str, node=None):
        self.node = node
        if node is not None:
            message = f"node {node.name!r} ({node.op}): {message}"
        super().__init__(message)


class BindingLimitError(GraphError):
    """A tensor a kernel binds is larger than the adapter's storage-binding limit. ``nbytes``,
    ``limit``: the sizes; ``node``: the node whose kernel binds it."""

    def __init__(self, nbytes: int, limit: int, node=None, detail: str = ""):
        self.nbytes, self.limit = nbytes, limit
        super().__init__(f"a {nbytes}-byte tensor exceeds this adapter's {limit}-byte storage "
                         f"binding limit{detail}", node)


class KernelCompileError(GraphError):
    """A kernel's pipeline does not compile on this adapter (naga or the driver rejects it).
    ``kernel``: its file (the first that failed); ``choices``: for each launch of a plan whose
    kernel failed, the kernel-variant choices made while planning its node (tuning.ChoicePoint):
    the plan is made again without one of them where it can be (graph/plan.py build_plan)."""

    def __init__(self, message: str, kernel: str = "", choices: tuple = ()):
        self.kernel, self.choices = kernel, tuple(choices)
        super().__init__(message)


class AdapterError(WgpuRuntimeError):
    """No WebGPU adapter matches the request."""


class PrecisionError(WgpuRuntimeError, ValueError):
    """A precision that does not exist, or one the adapter cannot run (float16 without shader-f16)."""


class DisposedError(WgpuRuntimeError):
    """A model or a device tensor was used after ``dispose()``."""


class TensorError(WgpuRuntimeError, ValueError):
    """A device tensor cannot be made or used: a buffer too small or without the needed usage
    flags, a tensor of another device, a dtype no GPU tensor has."""
