"""Wait for a server's /health, as a process the agent can supervise: exit 0 once it answers 200, 3 when the
server's process has gone, 4 at the time limit (`python -m gate.checks.serving.ready URL PID SECONDS`)."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

POLL_S = 1.0
READY, SERVER_GONE, TIMED_OUT = 0, 3, 4


def alive(pid: int) -> bool:
    """Whether the process still runs (a zombie counts as gone: it has exited, its parent has not reaped it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait(url: str, pid: int, limit_s: float) -> int:
    """READY, SERVER_GONE or TIMED_OUT."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return SERVER_GONE
        try:
            with urllib.request.urlopen(url, timeout=POLL_S) as answer:
                if answer.status == 200:
                    return READY
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or still loading the model
        time.sleep(POLL_S)
    return TIMED_OUT


if __name__ == "__main__":
    code = wait(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
    print({READY: "ready", SERVER_GONE: "the server exited", TIMED_OUT: "not ready in time"}[code], flush=True)
    sys.exit(code)
