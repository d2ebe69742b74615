"""Crash-safe publication of an output (a model folder, or a file): written in a temporary place
beside the destination, then swapped in, so that at every moment the destination holds either
the previous complete output or the new complete one, whenever the writer is killed.

The swap is one atomic ``renameat2(RENAME_EXCHANGE)`` on Linux (the old output then sits at the
temporary name and is removed); elsewhere two renames, old -> ``.NAME.old-PID-TOKEN`` and new ->
NAME. Temporary and old entries carry the writer's pid: :func:`recover`, run before each write,
removes those of writers no longer alive and puts an old output back where a writer died
between the two renames.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import secrets
import shutil
from pathlib import Path

_RENAME_EXCHANGE = 2
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]+")


def temp_beside(dest: Path) -> Path:
    """A new empty folder beside ``dest`` for the writer of this process (``.NAME.tmp-PID-TOKEN``)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp)
    return tmp


def swap_into_place(new: Path, dest: Path) -> None:
    """Make the complete ``new`` (a file or a folder) the ``dest``; whatever ``dest`` was is removed."""
    new, dest = Path(new), Path(dest)
    _sync_tree(new)
    if not os.path.lexists(dest):
        os.rename(new, dest)
    elif new.is_file() and dest.is_file() and not dest.is_symlink():
        os.replace(new, dest)                       # atomic for files
    elif _exchange(new, dest):
        _remove(new)                                # the old output, now at the temporary name
    else:
        old = dest.parent / f".{dest.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(dest, old)
        os.rename(new, dest)
        _remove(old)
    _sync_dir(dest.parent)


def recover(dest: Path) -> list[Path]:
    """Clean up after writers of ``dest`` that died: an old output put back where ``dest`` is
    missing, their temporary and old entries removed. Returns what was removed or restored."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return []
    done = []
    leftovers = []
    for entry in dest.parent.iterdir():
        m = _LEFTOVER.fullmatch(entry.name)
        if m and m.group("name") == dest.name and not _alive(int(m.group("pid"))):
            leftovers.append((m.group("kind"), entry))
    for kind, entry in sorted(leftovers, key=lambda e: e[0] != "old"):    # restore before removing
        if kind == "old" and not os.path.lexists(dest):
            os.rename(entry, dest)
        else:
            _remove(entry)
        done.append(entry)
    return done


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unavailable."""
    fn = getattr(_libc(), "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (22, 38, 95):                     # EINVAL, ENOSYS, EOPNOTSUPP: not supported here
            return False
        raise OSError(err, os.strerror(err), str(b))
    return True


_LIBC = []


def _libc():
    if not _LIBC:
        try:
            _LIBC.append(ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True))
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _sync_tree(path: Path) -> None:
    """fsync every file under ``path`` and the folders holding them (data on disk before the swap)."""
    if path.is_file():
        _fsync(path, os.O_RDONLY)
        return
    for root, _, files in os.walk(path):
        for name in files:
            _fsync(Path(root) / name, os.O_RDONLY)
        _sync_dir(Path(root))


def _sync_dir(path: Path) -> None:
    _fsync(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: Path, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
