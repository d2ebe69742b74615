"""What ``fit`` / ``evaluate`` / ``predict`` show, with Keras' ``verbose``:

* ``"auto"`` (the default of all three, as in Keras 3): 1.
* ``0``: nothing.
* ``1``: on a terminal, a live progress bar per epoch (per pass for evaluate / predict) that
  stays on screen; when stdout is not a terminal (a pipe, a CI log), the bar's final state
  only: one line per epoch, not one per redraw.
* ``2``: one line per epoch (per pass), terminal or not.

Lines go to stdout, as Keras' progress bar does (``io_utils.print_msg``); with more than one
epoch ``fit`` starts each with ``Epoch i/N``, as Keras does, on the same line here.
"""
from __future__ import annotations

from ..io_utils import print_msg, stdout_is_terminal


def resolve_verbose(verbose) -> int:
    if verbose == "auto":
        return 1
    if verbose in (0, 1, 2) and not isinstance(verbose, float):
        return int(verbose)
    raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")


def format_logs(logs: dict | None) -> str:
    out = []
    for k, v in (logs or {}).items():
        try:
            v = float(v)
        except (TypeError, ValueError):
            out.append(f"{k}: {v}")
            continue
        out.append(f"{k}: {v:.4f}" if abs(v) > 1e-3 or v == 0 else f"{k}: {v:.4e}")
    return " - ".join(out)


def format_time(seconds: float, steps: int) -> str:
    """``3s 12ms/step`` as Keras writes it."""
    per = seconds / max(steps, 1)
    if per >= 1:
        unit = f"{per:.0f}s/step"
    elif per >= 1e-3:
        unit = f"{per * 1e3:.0f}ms/step"
    else:
        unit = f"{per * 1e6:.0f}us/step"
    return f"{seconds:.0f}s {unit}"


def summary_line(steps: int, seconds: float, logs: dict | None, prefix: str = "") -> str:
    text = f"{prefix}{steps}/{steps} - {format_time(seconds, steps)}"
    logs_text = format_logs(logs)
    return f"{text} - {logs_text}" if logs_text else text


class _Bar:
    """A rich progress bar on stdout (terminal only) for one pass of ``steps`` batches."""

    def __init__(self, description: str, steps: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
            TimeElapsedColumn

        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[logs]}"), transient=False)
        self._bar.__enter__()
        self._task = self._bar.add_task(description, total=steps, logs="")

    def update(self, done: int, logs: dict | None = None) -> None:
        self._bar.update(self._task, completed=done, logs=format_logs(logs))

    def close(self) -> None:
        self._bar.__exit__(None, None, None)


class Progress:
    """fit's display: ``epoch_begin`` / ``batch_end`` / ``epoch_end`` inside ``with``."""

    def __init__(self, verbose, epochs: int, steps: int):
        self.verbose = resolve_verbose(verbose)
        self.epochs, self.steps = epochs, steps
        self.live = self.verbose == 1 and stdout_is_terminal()
        self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        return False

    def _epoch_label(self, epoch: int) -> str:
        return f"Epoch {epoch + 1}/{self.epochs}" if self.epochs > 1 else ""

    def epoch_begin(self, epoch: int) -> None:
        if self.live:
            self._bar = _Bar(self._epoch_label(epoch) or "Training", self.steps)

    def batch_end(self, step: int, logs: dict) -> None:
        if self._bar is not None:
            self._bar.update(step + 1, logs)

    def epoch_end(self, epoch: int, logs: dict, seconds: float, steps_done: int | None = None) -> None:
        if self._bar is not None:
            self._bar.update(self.steps if steps_done is None else steps_done, logs)
            self._bar.close()
            self._bar = None
        elif self.verbose:
            label = self._epoch_label(epoch)
            steps = self.steps if steps_done is None else steps_done
            text = summary_line(steps, seconds, logs, f"{label} - " if label else "")
            if steps != self.steps:       # stopped mid-epoch (stop_training, TerminateOnNaN)
                text = text.replace(f"{steps}/{steps}", f"{steps}/{self.steps}", 1)
            print_msg(text)


class PassProgress:
    """evaluate's and predict's display: one pass of ``steps`` batches."""

    def __init__(self, verbose, steps: int):
        self.verbose = resolve_verbose(verbose)
        self.steps = steps
        self._bar = _Bar("", steps) if self.verbose == 1 and stdout_is_terminal() else None

    def batch_end(self, step: int) -> None:
        if self._bar is not None:
            self._bar.update(step + 1)

    def abort(self) -> None:
        """The pass failed: take the bar down, print nothing."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def end(self, seconds: float, logs: dict | None = None) -> None:
        if self._bar is not None:
            self._bar.update(self.steps, logs)
            self._bar.close()
            self._bar = None
        elif self.verbose:
            print_msg(summary_line(self.steps, seconds, logs))
