"""Input and output helpers of the runtime: messages a user asked for with ``verbose`` (training
progress, callbacks), written to stdout as Keras' ``io_utils.print_msg`` does; and reading the
files a model names safely: regular files only (never a FIFO, a device or a folder), the size
checked before anything is read, paths confined to the model's folder (symlinks resolved, loops
and NUL bytes refused)."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import ModelFormatError


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


MODEL_JSON_MAX_BYTES = 256 << 20      # the largest model.json read (the official ones: a few MB)
SHARD_MAX_BYTES = 8 << 30             # the largest weight shard read (the official writer: 4 MB)


def read_regular(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path`` (``what`` names it in errors), at most ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)   # a FIFO opens without a writer
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: {what} not found") from None
    except ValueError as e:                                              # a NUL byte in the path
        raise ModelFormatError(f"{os.fsdecode(path)!r}: cannot read {what}: {e}") from None
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket")
            raise ModelFormatError(f"{path}: {what} is {kind}, not a regular file")
        if st.st_size > max_bytes:
            raise ModelFormatError(f"{path}: {what} is {st.st_size} bytes, over the limit of {max_bytes}")
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 26))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def inside(folder: Path, rel, what: str, where: str) -> Path:
    """``folder / rel`` for a relative path ``rel`` named in a model file, refused (one clear
    line) when it is not a plain relative path or resolves, symlinks followed, outside ``folder``."""
    if not isinstance(rel, str) or not rel:
        raise ModelFormatError(f"{where}: {what} path must be a non-empty string, got {rel!r}")
    if "\x00" in rel:
        raise ModelFormatError(f"{where}: refusing {what} path {rel!r}: it holds a NUL byte")
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).drive or PureWindowsPath(rel).is_absolute():
        raise ModelFormatError(f"{where}: refusing absolute {what} path {rel!r}")
    full = folder / rel
    try:
        contained = full.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError) as e:          # RuntimeError: a symlink loop (Python < 3.13)
        raise ModelFormatError(f"{where}: cannot resolve {what} path {rel!r}: {e}") from None
    if not contained:
        raise ModelFormatError(f"{where}: refusing {what} path {rel!r}: it leads outside the model folder {folder}")
    return full
