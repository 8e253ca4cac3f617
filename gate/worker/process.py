"""An evaluation as a child process: its own process group (so a signal reaches vLLM's workers too), a log tail,
and progress read from its progress bars."""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_TAIL_LINES = 200
PROGRESS = re.compile(r"Running \w+ requests:.*?\|\s*(\d+)/(\d+)")
# With a response cache, lm-eval's progress bar counts only the requests it still has to run
CACHED = re.compile(r"Cached requests: (\d+), Requests remaining: (\d+)")
# The sharded driver's running estimate after each shard (gate.verdicts.trail), sent on with each heartbeat
ESTIMATE = re.compile(r"^gate: estimate (\{.*\})$")
READ_CHUNK = 65536


@dataclass(frozen=True)
class Invocation:
    """A command line (never a shell line), its environment and where it writes."""

    argv: list[str]
    env: dict[str, str]
    output_dir: Path


PR_SET_PDEATHSIG = 1


def parent_death_signal(signum: int) -> Callable[[], None]:
    """A preexec_fn: Linux sends `signum` to the child when the thread that started it dies (kill -9 included),
    so no orphan holds a device or a lease. Start such children from a thread that lives as long as they should."""

    def arm() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signum)

    return arm


class Evaluation:
    """A running lm-eval process."""

    def __init__(self, invocation: Invocation, log_path: Path) -> None:
        self.invocation = invocation
        # A fresh, empty folder per attempt: an earlier server's run with the same id may have left files there.
        shutil.rmtree(invocation.output_dir, ignore_errors=True)
        # lm-eval runs in an empty folder of its own: `python -m` puts the working directory first on sys.path,
        # so a stray secrets.py beside the worker would be imported in place of the standard library's.
        workdir = invocation.output_dir / "cwd"
        workdir.mkdir(parents=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self._tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.done: int | None = None
        self.total: int | None = None
        self._cached = 0  # answered from the response cache, before the progress bar starts
        self.estimate: dict[str, Any] | None = None  # {"total": N, "points": [...]}, gate.verdicts.trail
        self.process = subprocess.Popen(
            invocation.argv,
            env={**os.environ, **invocation.env, "PYTHONSAFEPATH": "1"},
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=parent_death_signal(signal.SIGKILL),
        )
        self._reader = threading.Thread(target=self._read, name="lm-eval-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert isinstance(stdout, io.BufferedReader)  # a binary pipe: read1 returns what has arrived
        pending = ""
        while chunk := stdout.read1(READ_CHUNK):
            self._log.write(chunk)
            self._log.flush()  # the log on disk is read while the process runs (a warm engine's, by its runs)
            pending += chunk.decode("utf-8", "replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                self._line(line)
            if "\r" in pending:  # a progress bar redrawing itself
                frames = pending.split("\r")
                pending = frames.pop()
                for frame in frames:
                    self._progress(frame)
        if pending:
            self._line(pending)
        self._log.close()

    def _progress(self, frame: str) -> None:
        if match := CACHED.search(frame):
            self._cached = int(match.group(1))
            self.done, self.total = self._cached, self._cached + int(match.group(2))
        elif match := PROGRESS.search(frame):
            self.done, self.total = self._cached + int(match.group(1)), self._cached + int(match.group(2))

    def _line(self, line: str) -> None:
        frames = line.split("\r")
        for frame in frames:
            self._progress(frame)
        last = frames[-1].rstrip()
        if match := ESTIMATE.match(last):
            shard = json.loads(match.group(1))
            points = self.estimate["points"] if self.estimate else []
            # replaced whole, never changed in place: the heartbeat thread reads it
            self.estimate = {"total": shard["total"], "points": [*points, shard["point"]]}
        if last:
            self._tail.append(last)

    @property
    def log_tail(self) -> str:
        return "\n".join(self._tail)

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self, grace_s: float) -> int:
        """SIGTERM to the whole process group, SIGKILL after the grace period."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                return self.wait(grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        return self.wait()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
