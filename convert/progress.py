"""Progress of a conversion, phase by phase: a rich display on a terminal, nothing when piped."""
from __future__ import annotations

import contextlib
import sys
import time


class PhaseProgress:
    """``with progress("freezing the graph"): ...`` shows a spinner while the phase runs and a
    tick with its time once done. Use as a context manager around the whole conversion."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        self.console = console or Console(stderr=True)
        self._progress = Progress(SpinnerColumn(finished_text="[green]✓"), TextColumn("{task.description}"),
                                  console=self.console, transient=False)

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    @contextlib.contextmanager
    def __call__(self, name: str):
        task = self._progress.add_task(name, total=1)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self._progress.update(task, description=f"[red]{name} (failed)")
            self._progress.stop_task(task)
            raise
        self._progress.update(task, completed=1,
                              description=f"{name} [dim]{time.perf_counter() - start:.1f} s[/]")


def for_terminal(stream=None):
    """A PhaseProgress drawing on ``stream`` (default stderr) when it is a terminal, else None
    (quiet)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    from rich.console import Console

    return PhaseProgress(Console(file=stream))


@contextlib.contextmanager
def native_stderr_captured():
    """TensorFlow's C++ start-up and Grappler logs (cuInit, cuDNN factories, "Starting new
    session"...) go to file descriptor 2, below Python. During a conversion they are written
    to a temporary file instead, and shown only if the conversion fails unexpectedly. Yields
    a text stream on the real stderr for the progress display and warnings."""
    import os
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    log = tempfile.TemporaryFile()
    os.dup2(log.fileno(), 2)
    real = os.fdopen(os.dup(saved), "w", buffering=1)
    failed = None
    try:
        yield real
    except BaseException as e:
        failed = e
        raise
    finally:
        sys.stderr.flush()
        real.flush()
        os.dup2(saved, 2)
        os.close(saved)
        real.close()
        from .errors import ConversionError

        if failed is not None and not isinstance(failed, (ConversionError, KeyboardInterrupt)):
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace"))
        log.close()
