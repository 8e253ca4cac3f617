"""A warm engine: one vLLM OpenAI-compatible server a worker keeps alive across runs of one model.

It is keyed by the model's fingerprint, its engine arguments (vLLM's defaults filled in, so a spelled-out default is
the same engine) and its devices. It is replaced when a run needs another key (the old process group gone before the
new one starts), stopped when idle longer than `idle_s` or when the worker drains, and a dead or unhealthy one is
started again once for the next run; a server that does not come up fails that run as infrastructure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.worker import engines, fingerprint, modelref
from gate.worker.config import WorkerConfig
from gate.worker.process import Evaluation, Invocation

log = logging.getLogger("gate.worker")
READY_LIMIT_S = 900.0  # a large model's loading and warm-up on an NPU; the download is done before
POLL_S = 0.5  # health polls while the server starts
HEALTH_TIMEOUT_S = 5.0  # a warm server that does not answer /health within this is restarted
IDLE_CHECK_S = 1.0  # how often the idle timer looks
STOP_GRACE_S = 20.0  # SIGTERM to SIGKILL: vLLM's server stops in about 8 s on CPU
GONE_LIMIT_S = 30.0  # after SIGKILL, how long the process group may take to vanish


class EngineFailed(Exception):
    """The warm engine did not start: the run fails as infrastructure, with the server's log tail."""

    def __init__(self, reason: str, tail: str) -> None:
        super().__init__(reason)
        self.tail = tail


class Interrupted(Exception):
    """The run was cancelled, lost, fenced or drained while its engine started (what happened)."""


def vllm_defaults(backend: str, config: WorkerConfig) -> dict[str, Any]:
    """vLLM's own defaults for the arguments a run may set (and gate's for vLLM-Ascend), so that `dtype=auto` and
    no dtype are the same engine."""
    ascend = backend == "vllm-ascend"
    return {
        "dtype": "bfloat16" if ascend else "auto",
        "tensor_parallel_size": max(len(config.devices), 1),
        "gpu_memory_utilization": 0.9,
        "enforce_eager": ascend,
        "trust_remote_code": False,
    }


def worker_devices(config: WorkerConfig) -> dict[str, str]:
    """The device settings of a server on the worker's own devices (--devices), for checks that name none."""
    kind = "npu" if config.backend == "vllm-ascend" else "cuda" if config.devices else "cpu"
    return engines.device_env(kind, ",".join(str(d) for d in config.devices))


@dataclass(frozen=True)
class Wanted:
    """The engine a run asks for: the model's files and their fingerprint, its server arguments and devices."""

    model_path: str
    fingerprint: str
    engine_args: dict[str, Any]  # vLLM server arguments (flag names with underscores), None for vLLM's default
    devices: dict[str, str]  # the device selection and platform settings (engines.device_env)

    def arguments(self, backend: str, config: WorkerConfig) -> dict[str, Any]:
        """The engine arguments with every default spelled out, in a stable order."""
        given = {name: value for name, value in self.engine_args.items() if value is not None}
        merged = {**vllm_defaults(backend, config), **given}
        return {name: merged[name] for name in sorted(merged)}

    def key(self, backend: str, config: WorkerConfig) -> str:
        """What one server can share: the same weights, engine arguments and devices."""
        what = {"model": self.fingerprint, "args": self.arguments(backend, config), "devices": self.devices}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def wanted_for(
    model: str, engine_args: dict[str, Any], devices: dict[str, str], config: WorkerConfig, revision: str | None = None
) -> Wanted:
    """The engine a run of `model` asks for: its files fetched (a hub or ModelScope id) and fingerprinted."""
    model_path = modelref.resolve(model, config.work_dir / "models")
    folder = modelref.local_folder(model_path, revision)
    digest = fingerprint.fingerprint(folder, config.work_dir / "fingerprints.json").digest
    return Wanted(model_path, digest, engine_args, devices)


@dataclass
class Engine:
    """A started server."""

    key: str
    evaluation: Evaluation
    base_url: str  # http://127.0.0.1:PORT (without /v1)
    started_at: float  # time.monotonic() when it became ready
    started_for_run: int
    start_s: float  # from the process's start to its first healthy answer
    invocation: Invocation = field(repr=False)
    log_path: Path | None = None  # everything the server printed since it started

    @property
    def up_s(self) -> float:
        return time.monotonic() - self.started_at

    def record(self) -> dict[str, Any]:
        """What a run's environment says of the engine it used."""
        up = {"used": True, "up_s": round(self.up_s, 1), "started_for_run": self.started_for_run}
        return {**up, "start_s": round(self.start_s, 1)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((engines.HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def healthy(base_url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies are gone: they hold no memory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


class WarmEngines:
    """The worker's one warm engine. `ensure` and `stop` run on the agent's thread (a server dies with the thread
    that started it); the idle timer only stops."""

    def __init__(self, config: WorkerConfig, idle_s: float, grace_s: float = STOP_GRACE_S) -> None:
        self.config, self.idle_s, self.grace_s = config, idle_s, grace_s
        self.engine: Engine | None = None
        self.starts = 0  # servers started, for logs and tests
        self._lock = threading.Lock()
        self._busy = False
        self._idle_since = time.monotonic()
        self._closed = threading.Event()
        self._timer = threading.Thread(target=self._watch_idle, name="warm-engine-idle", daemon=True)
        self._timer.start()

    def ensure(self, wanted: Wanted, run_id: int, stop: Callable[[], str | None]) -> Engine:
        """The engine for `wanted`, started (or replaced) if need be, held busy until `release`.
        Raises EngineFailed (it did not come up) or Interrupted (stop() said why, while it started)."""
        key = wanted.key(self.config.backend, self.config)
        with self._lock:
            self._busy = True
            engine = self.engine
            if engine is not None and engine.key != key:
                log.info("warm engine: run %s needs other weights or arguments: stopping the engine", run_id)
                self._stop()
            elif engine is not None and engine.evaluation.poll() is not None:
                code = engine.evaluation.poll()
                log.warning("warm engine: the server exited (%s): starting it again for run %s", code, run_id)
                self._stop()
            elif engine is not None and not healthy(engine.base_url, HEALTH_TIMEOUT_S):
                log.warning("warm engine: the server does not answer: starting it again for run %s", run_id)
                self._stop()
            if self.engine is None:
                self.engine = self._start(wanted, key, run_id, stop)
            return self.engine

    def release(self) -> None:
        """The run is over: the idle clock starts."""
        with self._lock:
            self._busy = False
            self._idle_since = time.monotonic()

    def stop(self) -> None:
        """Stop the engine (a drain): the process group is gone when this returns."""
        self._closed.set()
        with self._lock:
            self._stop()

    def _start(self, wanted: Wanted, key: str, run_id: int, stop: Callable[[], str | None]) -> Engine:
        port = free_port()
        self.starts += 1
        folder = (self.config.work_dir / "warm" / f"engine-{self.starts}").resolve()
        args = wanted.arguments(self.config.backend, self.config)
        invocation = engines.server(wanted.model_path, args, wanted.devices, self.config, port, folder)
        log.info("warm engine: starting a vLLM server for run %s on port %d (%s)", run_id, port, key)
        started = time.monotonic()
        evaluation = Evaluation(invocation, folder.with_suffix(".log"))
        base_url = f"http://{engines.HOST}:{port}"
        engine = Engine(key, evaluation, base_url, started, run_id, 0.0, invocation, folder.with_suffix(".log"))
        deadline = started + READY_LIMIT_S
        while not healthy(engine.base_url, POLL_S):
            reason = stop()
            if reason is not None or evaluation.poll() is not None or time.monotonic() > deadline:
                self._terminate(engine)
                if reason is not None:
                    raise Interrupted(reason)
                what = "exited" if evaluation.poll() is not None else f"was not ready in {READY_LIMIT_S:g} s"
                raise EngineFailed(f"the warm vLLM server {what}", evaluation.log_tail)
            time.sleep(POLL_S)
        engine.started_at = time.monotonic()
        engine.start_s = engine.started_at - started
        log.info("warm engine: ready in %.1f s", engine.start_s)
        return engine

    def _stop(self) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            self._terminate(engine)
            log.info("warm engine: stopped after %.1f s", engine.up_s)

    def _terminate(self, engine: Engine) -> None:
        """SIGTERM, SIGKILL after the grace period, then wait until no process of the group lives (its memory is
        released before another engine starts)."""
        pgid = engine.evaluation.process.pid
        engine.evaluation.stop(self.grace_s)
        deadline = time.monotonic() + GONE_LIMIT_S
        while (members := group_members(pgid)) and time.monotonic() < deadline:
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        if members:
            log.error("warm engine: processes %s of the old server are still alive", members)

    def _watch_idle(self) -> None:
        while not self._closed.wait(IDLE_CHECK_S):
            with self._lock:
                idle = time.monotonic() - self._idle_since
                if self.engine is not None and not self._busy and idle > self.idle_s:
                    log.info("warm engine: idle for %.0f s", idle)
                    self._stop()
