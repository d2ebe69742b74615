"""The command line's exit statuses, and the errors that pick them.

    0  success
    1  the command ran and found a failure: a conformance mismatch, unsupported ops in ``info``,
       no adapter in ``adapters``, a regression in ``bench --compare --fail-on-regression``
    2  usage error: a bad option or argument (argparse's own status), a missing optional extra
    3  the model or the input is wrong: a malformed model, unsupported ops, inputs that do not
       fit, a model the converter cannot convert
    4  runtime failure: no usable adapter, a plan the device cannot run, a GPU / driver error
  130  interrupted (Ctrl-C)

Every error is one ``error: ...`` line on stderr; ``-v`` adds the traceback of unexpected ones.
"""
from __future__ import annotations

from .errors import AdapterError, GraphError, WgpuRuntimeError

OK, CHECK_FAILED, USAGE, MODEL_OR_INPUT, RUNTIME, INTERRUPTED = 0, 1, 2, 3, 4, 130

EPILOG = ("exit status: 0 ok; 1 the command ran and found a failure (conformance mismatch, unsupported "
          "ops, no adapter, a bench regression with --fail-on-regression); 2 usage error (bad option, "
          "missing extra); 3 model or input error; 4 runtime failure (adapter, device, GPU); 130 interrupted")


class UsageError(WgpuRuntimeError):
    """A command-line option or argument is wrong (exit status 2, as argparse's own errors)."""


class MissingExtraError(UsageError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, modules, extra: str, what: str):
        self.modules = [modules] if isinstance(modules, str) else list(modules)
        self.extra = extra
        names = ", ".join(repr(m) for m in self.modules)
        which = "module" if len(self.modules) == 1 else "modules"
        verb = "is" if len(self.modules) == 1 else "are"
        super().__init__(f"{what} needs the Python {which} {names}, which {verb} not installed: "
                         f"pip install wgpu-runtime[{extra}]")


def exit_code(error: BaseException) -> int:
    """The exit status for an error that ended a command."""
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(error, UsageError):
        return USAGE
    if isinstance(error, (AdapterError, GraphError)):
        return RUNTIME
    if isinstance(error, WgpuRuntimeError):
        return MODEL_OR_INPUT
    return RUNTIME          # anything unexpected: wgpu / driver errors, out of memory, bugs
