"""The persistent tuning cache: one JSON file per device key in the user's cache folder.

The key names what makes a timing valid: the adapter (vendor, device, description, backend,
type, ids), its driver, the wgpu version, this runtime's version, a digest of the kernel files
and whether naga's loop bounding was kept (wgpu_runtime/shader_modules.py). A file holds the winners
{(family, shape_class) -> variant name, with the candidates' times}. Writes are atomic (a temp
file, then ``os.replace``). A file that is not valid JSON, has another schema, or belongs to
another key is ignored with one warning and rewritten on the next save; a folder that cannot be
written gives one warning and the cache lives on in memory.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger(__name__)

SCHEMA = 2          # 2: winners confirmed in the whole model (graph/in_context.py); 1's, timed alone only, are not reused
RECORD = "wgpu-runtime tuning cache"
ENV_DIR = "WGPU_RUNTIME_CACHE"          # overrides the cache folder


def cache_dir() -> Path:
    """``$WGPU_RUNTIME_CACHE``, else ``$XDG_CACHE_HOME/wgpu-runtime``, else ``~/.cache/wgpu-runtime``."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wgpu-runtime"


def device_key(device) -> dict:
    """What a tuning result is valid for: adapter, driver, wgpu and runtime versions, the kernels'
    text and whether they were compiled with naga's loop bounding (shader_modules.py)."""
    import wgpu

    from .. import __version__, pipelines, shader_modules

    info = dict(device.adapter.info)
    return {"vendor": str(info.get("vendor", "")), "device": str(info.get("device", "")),
            "description": str(info.get("description", "")), "backend": str(info.get("backend_type", "")),
            "adapter_type": str(info.get("adapter_type", "")), "vendor_id": int(info.get("vendor_id", 0) or 0),
            "device_id": int(info.get("device_id", 0) or 0), "driver": str(info.get("description", "")),
            "wgpu": str(getattr(wgpu, "__version__", "")), "runtime": str(__version__),
            "kernels": pipelines.kernels_digest(), "loop_bounding": shader_modules.loop_bounding()}


def key_digest(key: dict) -> str:
    """A short stable name for a device key (file names)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _tuple(value):
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value


class TuningCache:
    """Winners for one device key, backed by ``<folder>/tuning-<digest>.json``."""

    def __init__(self, key: dict, folder: Path):
        self.key = key
        self.path = Path(folder) / f"tuning-{key_digest(key)}.json"
        self.entries: dict[tuple[str, tuple], dict] = {}
        self._lock = threading.Lock()
        self._warned_write = False
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as e:
            logger.warning("tuning cache %s unreadable (%s): ignored, rewritten on the next save", self.path, e)
            return
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("record") != RECORD or data.get("schema") != SCHEMA:
                raise ValueError("not a tuning cache of schema %d" % SCHEMA)
            if data.get("key") != self.key:
                raise ValueError("made for another adapter, driver or version (stale)")
            entries = {}
            for e in data["entries"]:
                if not isinstance(e["variant"], str) or not isinstance(e["family"], str):
                    raise ValueError("an entry without a variant name")
                entries[(e["family"], _tuple(e["shape_class"]))] = dict(e)
        except (ValueError, KeyError, TypeError) as e:
            logger.warning("tuning cache %s ignored (%s): rewritten on the next save", self.path, e)
            return
        self.entries = entries

    def lookup(self, family: str, shape_class: tuple) -> str | None:
        """The tuned winner's name, or None."""
        entry = self.entries.get((family, tuple(shape_class)))
        return entry["variant"] if entry else None

    def store(self, family: str, shape_class: tuple, variant: str, timings_ms: dict | None = None,
              failed: dict | None = None, in_context_ms: dict | None = None) -> None:
        """Record a winner (in memory; :meth:`save` writes the file). ``timings_ms``: each
        candidate timed alone; ``in_context_ms``: the default and the fastest alone timed in the
        whole model (graph/in_context.py), when that check ran."""
        with self._lock:
            entry = {"family": family, "shape_class": list(shape_class), "variant": variant,
                     "timings_ms": dict(timings_ms or {}), "failed": dict(failed or {}),
                     "tuned": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            if in_context_ms:
                entry["in_context_ms"] = dict(in_context_ms)
            self.entries[(family, tuple(shape_class))] = entry

    def clear(self) -> None:
        """Forget every entry and remove the file (if it can be)."""
        with self._lock:
            self.entries.clear()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            logger.warning("tuning cache %s not removed: %s", self.path, e)

    def save(self) -> bool:
        """Write the file atomically; False (with one warning) when the folder is not writable."""
        with self._lock:
            data = {"record": RECORD, "schema": SCHEMA, "key": self.key,
                    "entries": sorted(self.entries.values(), key=lambda e: (e["family"], json.dumps(e["shape_class"])))}
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)        # mkstemp makes it private; a cache file is not
            if self.path.is_dir() and not self.path.is_symlink():
                self.path.rmdir()          # an empty folder in the file's place; a full one raises
            os.replace(tmp, self.path)
            return True
        except OSError as e:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            if not self._warned_write:
                logger.warning("tuning cache not saved to %s (%s): tuning results kept in memory only",
                               self.path, e)
                self._warned_write = True
            return False


_CACHES: dict[tuple[str, str], TuningCache] = {}
_CACHES_LOCK = threading.Lock()


def for_device(device) -> TuningCache:
    """The cache of ``device`` in the current cache folder (loaded once per process and folder)."""
    key = device_key(device)
    folder = cache_dir()
    ident = (str(folder), key_digest(key))
    with _CACHES_LOCK:
        cache = _CACHES.get(ident)
        if cache is None:
            cache = _CACHES[ident] = TuningCache(key, folder)
        return cache


def forget() -> None:
    """Drop the caches loaded in this process (the next lookup reads the files again)."""
    with _CACHES_LOCK:
        _CACHES.clear()
