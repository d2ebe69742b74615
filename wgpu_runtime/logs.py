"""Logging for the command line: the ``wgpu_runtime`` logger (modules log to its children,
``logging.getLogger(__name__)``) gets one handler on stderr, at the level ``-q`` / ``-v`` pick.

Library code never prints; it logs. An application that imports wgpu_runtime configures logging
as it likes (``logging.getLogger("wgpu_runtime").setLevel(logging.INFO)``); nothing here runs then.
"""
from __future__ import annotations

import contextlib
import logging
import sys

ROOT = "wgpu_runtime"
LEVELS = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}   # 2 and more: DEBUG


class _Formatter(logging.Formatter):
    """``warning: text`` (the same shape as the CLI's ``error: text``); with -vv the module too."""

    def __init__(self, with_names: bool):
        super().__init__()
        self.with_names = with_names

    def format(self, record: logging.LogRecord) -> str:
        where = f" [{record.name}]" if self.with_names else ""
        text = f"{record.levelname.lower()}{where}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (pytest's capture, a redirect) or to a stream set with
    :func:`stream_to` (the converter's real stderr while TensorFlow's native logs are captured)."""

    def __init__(self):
        super().__init__()
        self._target = None

    @property
    def stream(self):
        return self._target or sys.stderr

    @stream.setter
    def stream(self, value):      # StreamHandler.__init__ assigns it; the property decides
        pass


_handler = _StderrHandler()


def level_for(verbosity: int) -> int:
    return LEVELS.get(verbosity, logging.DEBUG if verbosity > 1 else logging.ERROR)


_saved: list[tuple[int, bool]] = []      # the logger's (level, propagate) before configure()


def configure(verbosity: int = 0) -> None:
    """``verbosity``: -1 (-q: errors only), 0 (warnings), 1 (-v: info), 2 (-vv: debug).
    :func:`reset` undoes it (the CLI's ``main`` does, so an in-process call leaves no trace)."""
    logger = logging.getLogger(ROOT)
    if _handler not in logger.handlers:
        _saved.append((logger.level, logger.propagate))
        logger.addHandler(_handler)
    logger.setLevel(level_for(verbosity))
    _handler.setFormatter(_Formatter(with_names=verbosity > 1))
    logger.propagate = False      # handlers on the root logger (TensorFlow's absl) do not repeat them


def reset() -> None:
    logger = logging.getLogger(ROOT)
    if _handler in logger.handlers:
        logger.removeHandler(_handler)
        level, propagate = _saved.pop() if _saved else (logging.NOTSET, True)
        logger.setLevel(level)
        logger.propagate = propagate


@contextlib.contextmanager
def stream_to(stream):
    """While the block runs, the CLI's log lines go to ``stream``."""
    saved = _handler._target
    _handler._target = stream
    try:
        yield
    finally:
        _handler._target = saved


def live_progress(json_output: bool) -> bool:
    """Whether a command shows a progress bar: a terminal on stderr, no ``--json``, and not ``-q``."""
    return not json_output and sys.stderr.isatty() and logging.getLogger(ROOT).isEnabledFor(logging.WARNING)
