"""Training progress: a rich progress bar per epoch on a terminal, one line per epoch with
``verbose=2``, nothing when piped (``verbose="auto"``) or with ``verbose=0``."""
from __future__ import annotations

import sys


def _fmt(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())


class Progress:
    def __init__(self, verbose, epochs: int, steps: int):
        if verbose == "auto":
            verbose = 1 if sys.stdout.isatty() else 0
        self.verbose = int(verbose)
        self.epochs, self.steps = epochs, steps
        self._bar = None
        self._task = None

    def __enter__(self):
        if self.verbose == 1:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[logs]}"), transient=False)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False

    def epoch_begin(self, epoch: int) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(f"Epoch {epoch + 1}/{self.epochs}", total=self.steps, logs="")

    def batch_end(self, step: int, logs: dict) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=step + 1, logs=_fmt(logs))

    def epoch_end(self, epoch: int, logs: dict, seconds: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.steps, logs=_fmt(logs))
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self.epochs} - {seconds:.1f}s - {_fmt(logs)}", flush=True)
