"""Messages a user asked for with ``verbose`` (training progress, callbacks): written to stdout
as Keras' ``io_utils.print_msg`` does, so they interleave with the user's own prints."""
from __future__ import annotations

import sys


def print_msg(message: str, line_break: bool = True) -> None:
    text = f"{message}\n" if line_break else str(message)
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:            # a stdout that cannot encode the bar characters
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.write(text.encode(encoding, errors="replace").decode(encoding))
    sys.stdout.flush()


def stdout_is_terminal() -> bool:
    return bool(getattr(sys.stdout, "isatty", None)) and sys.stdout.isatty()
