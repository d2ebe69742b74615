"""Connecting to Ray for ``batch --ray`` and ``conformance --ray``: the one place that imports it."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from types import ModuleType
from typing import Iterator

from ..exit_codes import MissingExtraError
from ..errors import WgpuRuntimeError

logger = logging.getLogger(__name__)

LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024   # a local cluster started for one run: small


class ClusterError(WgpuRuntimeError):
    """Ray cannot be reached or started, or the cluster cannot run the work."""


def import_ray() -> ModuleType:
    """``ray`` (with Ray Data), or a usage error naming the ``[ray]`` extra."""
    try:
        import ray
        import ray.data  # noqa: F401 -- batch needs Ray Data; fail here, not halfway through
    except ImportError:
        raise MissingExtraError("ray", "ray", "--ray") from None
    return ray


def connect(address: str, num_cpus: int | None = None) -> tuple[ModuleType, str]:
    """Join the cluster at ``address``; ``auto``: the cluster Ray finds (``RAY_ADDRESS``, a
    running ``ray start``), else a local one started for this run. Returns (ray, description)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, "the Ray cluster already joined"
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")   # silences a FutureWarning
    os.environ.setdefault("RAY_enable_metrics_collection", "0")      # no dashboard agent: no exporter to reach
    if not logging.getLogger("wgpu_runtime").isEnabledFor(logging.INFO):
        for name in ("ray", "ray.data"):           # Ray Data's INFO lines and hints, unless -v
            logging.getLogger(name).setLevel(logging.ERROR)
    # worker processes find the Mesa drivers quietly, as this process does (device._quiet_mesa)
    env = {"env_vars": {k: os.environ[k] for k in ("XDG_RUNTIME_DIR",) if k in os.environ}}
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
              "configure_logging": False, "runtime_env": env}
    if address != "auto":
        try:
            ray.init(address=address, **common)
        except Exception as e:  # noqa: BLE001 -- Ray raises ConnectionError, RuntimeError, ValueError...
            raise ClusterError(f"cannot join the Ray cluster at {address}: {_one_line(e)}") from None
        return ray, f"Ray cluster at {address}"
    try:
        ray.init(address="auto", **common)
        return ray, "the running Ray cluster"
    except ConnectionError:
        pass
    except Exception as e:  # noqa: BLE001
        raise ClusterError(f"cannot join the running Ray cluster: {_one_line(e)}") from None
    try:
        ray.init(num_cpus=num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
    except Exception as e:  # noqa: BLE001
        raise ClusterError(f"cannot start a local Ray cluster: {_one_line(e)}") from None
    logger.info("started a local Ray cluster")
    return ray, "a local Ray cluster started for this run"


@contextlib.contextmanager
def session(address: str) -> Iterator[tuple[ModuleType, str]]:
    """connect(), then disconnect (a local cluster started here stops). Meanwhile stdout is
    stderr: Ray prints its workers' errors to stdout, which holds only results (--json)."""
    with contextlib.redirect_stdout(sys.stderr):
        ray, where = connect(address)
        try:
            yield ray, where
        finally:
            ray.shutdown()


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def cluster_nodes(ray) -> list[dict]:
    """Ray's records of the cluster's nodes (alive and dead), head first then by node id."""
    nodes = ray.nodes()
    return sorted(nodes, key=lambda n: (not n.get("Resources", {}).get("node:__internal_head__"), n["NodeID"]))


def gpus_in_cluster(ray) -> float:
    return float(ray.cluster_resources().get("GPU", 0))
