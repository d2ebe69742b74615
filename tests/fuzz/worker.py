"""A worker process: imports the runtime once, then for each case (one JSON line on stdin) forks a
child that runs it (tests/fuzz/child.py), waits with a timeout, and answers one JSON line:
{"id", "signal", "exit", "timed_out", "seconds"}. Forking before any device exists is safe and
saves each case the interpreter's start and the imports."""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np  # noqa: F401 -- imported once here, inherited by every child

import wgpu_runtime  # noqa: F401
import wgpu_runtime.__main__  # noqa: F401
import wgpu_runtime.layers  # noqa: F401

from tests.fuzz import child


def _wait(pid: int, timeout: float) -> tuple[int | None, int | None, bool]:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, signal.SIGKILL, True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status), False
    return os.WEXITSTATUS(status), None, False


def main() -> int:
    for line in sys.stdin:
        case = json.loads(line)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.setsid()
                child.run_case(case)
            except BaseException:  # noqa: BLE001 -- no result.json: the parent reports it
                code = 70
            finally:
                os._exit(code)
        code, sig, timed_out = _wait(pid, float(case["timeout"]))
        try:
            os.killpg(pid, signal.SIGKILL)       # anything the case started
        except ProcessLookupError:
            pass
        sys.stdout.write(json.dumps({"id": case["id"], "exit": code, "signal": sig, "timed_out": timed_out,
                                     "seconds": round(time.monotonic() - start, 3)}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
