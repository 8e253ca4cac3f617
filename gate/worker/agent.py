"""The worker agent: claim a run, renew its lease, hand it to its kind's worker part, which uploads exactly once.

Execution is at least once, recording exactly once: a lost lease means another attempt may run, and the
server refuses this attempt's writes. A worker that cannot renew for `fence_s` stops its own evaluation; both
intervals shrink to fit the lease the server grants with each claim, so fencing comes before the lease can expire.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass, replace
from types import FrameType
from typing import Protocol, cast

from gate import checks
from gate.worker import environment, warm
from gate.worker.client import GateClient, LeaseLost, ServerRefused
from gate.worker.config import ClaimedRun, WorkerConfig
from gate.worker.process import Evaluation, Invocation
from gate.worker.renewal import Renewal

log = logging.getLogger("gate.worker")
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)  # env names a report omits
POLL_S = 0.2  # how often the agent looks at its evaluation
RENEWALS_PER_LEASE = 3  # heartbeats per lease period: two can be lost before the lease is in danger
FENCE_SHARE = 0.8  # of the lease: the default 240 s of 300, leaving a fenced worker a fifth to stop lm-eval
INFRASTRUCTURE = re.compile(
    r"out of memory|OutOfMemoryError|MemoryError|Connection ?refused|ConnectionError|ReadTimeout|"
    r"NCCL error|HCCL|device-side assert|Segmentation fault|Bus error",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Timing:
    heartbeat_s: float = 30.0
    fence_s: float = 240.0  # a worker that has not renewed for this long kills its own evaluation
    cancel_grace_s: float = 10.0
    time_limit_s: float = 6 * 3600.0
    claim_wait_s: float = 20.0
    watch_wait_s: float = 20.0

    def within(self, lease_s: float) -> Timing:
        """This timing, renewing and fencing early enough for a lease of lease_s seconds (the server's choice)."""
        return replace(
            self,
            heartbeat_s=min(self.heartbeat_s, lease_s / RENEWALS_PER_LEASE),
            fence_s=min(self.fence_s, lease_s * FENCE_SHARE),
        )


def classify(exit_code: int, log_tail: str) -> str:
    """Infrastructure failures (killed, crashed, out of memory, network) are retried; the rest are the user's."""
    if exit_code < 0 or INFRASTRUCTURE.search(log_tail):
        return "infrastructure"
    return "user"


class KindWorker(Protocol):
    """The worker part of a check kind (`<package>.worker`): executes a claimed run under the agent's lease."""

    def execute(self, agent: Agent, claimed: ClaimedRun, timing: Timing, renewal: Renewal) -> str: ...


class EnginePart(Protocol):
    """A kind's optional `engine` part: the warm engine a claimed run can use (None: it runs without one)."""

    def wanted(self, claimed: ClaimedRun, config: WorkerConfig) -> warm.Wanted | None: ...


class Drained(Exception):
    """A drain signal arrived while the agent waited for work: nothing is held, so it stops waiting at once."""


class Agent:
    def __init__(
        self, client: GateClient, config: WorkerConfig, timing: Timing | None = None, name: str | None = None
    ) -> None:
        self.client, self.config, self.timing = client, config, timing or Timing()
        self.name = name or f"{socket.gethostname()}-{config.backend}"
        self.draining = client.stop  # one event: a drain also ends the client's retries
        self.base_info = environment.capture()
        self.info = self.base_info  # what a run's upload reports: the environment and the commands it ran
        self._idle = False  # in the claim long-poll, holding no run
        vllm = config.backend in ("vllm", "vllm-ascend")
        self.warm = warm.WarmEngines(config, config.warm_idle_s) if config.warm_engine and vllm else None

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT drain: claim nothing new, hand back the current run. An idle claim is cut short
        (a long-poll can last wait_s), so an idle worker stops within a second."""

        def drain(_signum: int, _frame: FrameType | None) -> None:
            self.draining.set()
            if self._idle:
                raise Drained()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, drain)

    def serve(self, max_runs: int | None = None, exit_when_idle_s: float | None = None) -> int:
        """Claim and execute runs until drained, max_runs are done, or nothing was claimed for exit_when_idle_s
        seconds (a batch job's worker gives its node back). Returns the number of runs executed."""
        executed = 0
        idle_since = time.monotonic()
        try:
            while not self.draining.is_set() and (max_runs is None or executed < max_runs):
                wait_s = self.timing.claim_wait_s
                if exit_when_idle_s is not None:
                    left_s = idle_since + exit_when_idle_s - time.monotonic()
                    if left_s <= 0:
                        log.info("worker %s: nothing claimed for %g s", self.name, exit_when_idle_s)
                        break
                    wait_s = min(wait_s, left_s)  # the last long-poll ends when the idle time is up
                try:
                    claimed = self._claim(wait_s)
                except Drained:
                    break
                except ConnectionError as exc:
                    log.warning("claim failed: %s", exc)
                    self.draining.wait(5)
                    continue
                if claimed is not None and self.draining.is_set():
                    self._hand_back(claimed["run_id"], claimed["lease"])  # claimed while the drain began
                elif claimed is not None:
                    self.execute(claimed)
                    executed += 1
                    idle_since = time.monotonic()
        finally:
            if self.warm is not None:
                self.warm.stop()
        log.info("worker %s stopped after %d run(s)", self.name, executed)
        return executed

    def _claim(self, wait_s: float) -> ClaimedRun | None:
        self._idle = True
        try:
            return self.client.claim(self.name, self.config.backend, list(self.config.labels), self.base_info, wait_s)
        finally:
            self._idle = False

    def execute(self, claimed: ClaimedRun) -> str:
        """Run one claimed run to an end. Returns what happened (for logs and tests)."""
        try:
            return self._execute(claimed)
        except Exception as exc:  # a bug here must cost one attempt, not the agent: report it and carry on
            log.exception("run %s: worker error", claimed["run_id"])
            return self.report_failure(
                claimed["run_id"], claimed["lease"], f"worker error: {exc!r}", "infrastructure", ""
            )

    def _execute(self, claimed: ClaimedRun) -> str:
        run_id, lease = claimed["run_id"], claimed["lease"]
        log.info("run %s attempt %s: %s on %s", run_id, claimed["attempt"], claimed["model"], claimed["tasks"])
        timing = self.timing.within(claimed["lease_s"])
        if timing != self.timing:
            log.info(
                "run %s: the lease is %g s: renewing every %.3g s, fencing after %.3g s without a renewal",
                run_id,
                claimed["lease_s"],
                timing.heartbeat_s,
                timing.fence_s,
            )
        try:  # the evaluation starts only after the first renewal succeeds
            self.client.heartbeat(run_id, lease, None, None, "", retry=True)
        except (LeaseLost, ConnectionError) as exc:
            log.warning("run %s: first renewal failed, not starting: %s", run_id, exc)
            return "not started"
        # taken after the reply (retries may precede it): the fence leaves a fifth of the lease for that latency
        with Renewal(self.client, run_id, lease, timing.heartbeat_s, time.monotonic()) as renewal:
            return self._dispatch(claimed, timing, renewal)

    def _dispatch(self, claimed: ClaimedRun, timing: Timing, renewal: Renewal) -> str:
        """Hand the run to the worker part of its kind (gate.checks.KINDS)."""
        kind = claimed["kind"]
        self.info = {**self.base_info, "commands": []}
        if kind not in checks.KINDS:
            reason = f"this worker cannot run checks of kind {kind!r} (it knows {', '.join(sorted(checks.KINDS))})"
            return self.report_failure(claimed["run_id"], claimed["lease"], reason, "user", "")
        part = cast(KindWorker, checks.part(kind, "worker"))
        if self.warm is None:
            return part.execute(self, claimed, timing, renewal)
        try:
            return self._on_warm_engine(part, claimed, timing, renewal)
        finally:
            self.warm.release()

    def _on_warm_engine(self, part: KindWorker, claimed: ClaimedRun, timing: Timing, renewal: Renewal) -> str:
        """Run the check against the warm engine its kind asks for (a kind's `engine.wanted`), started or replaced
        first; a kind or a run that wants none runs as without one."""
        assert self.warm is not None
        run_id, lease, kind = claimed["run_id"], claimed["lease"], claimed["kind"]
        wanted = None
        if checks.has_part(kind, "engine"):
            try:
                wanted = cast(EnginePart, checks.part(kind, "engine")).wanted(claimed, self.config)
            except Exception as exc:
                log.info("run %s: no warm engine: %s", run_id, exc)
        if wanted is None:
            self.info["warm_engine"] = {"used": False}
            return part.execute(self, claimed, timing, renewal)

        def interrupted() -> str | None:
            return "drained" if self.draining.is_set() else lost(renewal, timing)

        try:
            engine = self.warm.ensure(wanted, run_id, interrupted)
        except warm.Interrupted as stop:
            if str(stop) == "drained":
                self._hand_back(run_id, lease)
            return str(stop)
        except warm.EngineFailed as exc:
            reason = f"{exc}: {last_error(exc.tail)}"
            return self.report_failure(run_id, lease, reason, "infrastructure", exc.tail, wanted.fingerprint)
        self.record(engine.invocation)
        self.info["warm_engine"] = engine.record()
        cold = self.config
        self.config = replace(cold, warm_base_url=engine.base_url, warm_log=engine.log_path)
        try:
            return part.execute(self, claimed, timing, renewal)
        finally:
            self.config = cold

    def record(self, invocation: Invocation) -> None:
        """Keep a command the run starts, for its report's "commands to reproduce" (secrets left out)."""
        env = {k: v for k, v in invocation.env.items() if not SECRET_NAME.search(k)}
        self.info.setdefault("commands", []).append({"argv": list(invocation.argv), "env": env})

    def supervise(
        self,
        claimed: ClaimedRun,
        timing: Timing,
        renewal: Renewal,
        evaluation: Evaluation,
        time_limit: float,
        model_fingerprint: str | None,
    ) -> str | None:
        """Watch an evaluation until it exits (None) or must stop: cancelled, lost, fenced, drained or timed out
        (what happened; a timeout is reported as the run's failure)."""
        run_id, lease = claimed["run_id"], claimed["lease"]
        self.record(evaluation.invocation)
        renewal.evaluation = evaluation
        stop_reason = threading.Event()
        verdict: dict[str, str] = {}
        watcher = threading.Thread(
            target=self._watch,
            args=(run_id, lease, evaluation, verdict, stop_reason),
            daemon=True,
            name=f"watch-{run_id}",
        )
        watcher.start()
        started = time.monotonic()
        outcome = None
        while evaluation.poll() is None:
            if stop_reason.is_set():
                outcome = verdict.get("state", "lost")
            elif self.draining.is_set():
                outcome = "drained"
            elif time.monotonic() - started > time_limit:
                outcome = "timeout"
            else:
                outcome = lost(renewal, timing)
            if outcome is not None:
                break
            time.sleep(POLL_S)
        stop_reason.set()
        if outcome is None:
            return None
        evaluation.stop(timing.cancel_grace_s)
        log.info("run %s: evaluation stopped (%s)", run_id, outcome)
        if outcome == "timeout":
            return self.report_failure(
                run_id,
                lease,
                f"time limit of {time_limit:g} s reached",
                "timeout",
                evaluation.log_tail,
                model_fingerprint,
            )
        if outcome == "drained":
            self._hand_back(run_id, lease)
        return outcome  # cancelled, lost or fenced: another attempt (or nobody) owns the run now

    def _hand_back(self, run_id: int, lease: str) -> None:
        try:
            self.client.release(run_id, lease)
        except (LeaseLost, ConnectionError, ServerRefused) as exc:
            log.warning("run %s: could not hand back the lease: %s", run_id, exc)

    def _watch(
        self, run_id: int, lease: str, evaluation: Evaluation, verdict: dict[str, str], stop: threading.Event
    ) -> None:
        """Long-poll the server so that a cancel arrives within about a second, not at the next heartbeat."""
        while not stop.is_set() and evaluation.poll() is None:
            try:
                state = self.client.watch(run_id, lease, self.timing.watch_wait_s)
            except (ConnectionError, ServerRefused, LeaseLost):
                stop.wait(1.0)
                continue
            if state != "running":
                verdict["state"] = state
                stop.set()

    def report_failure(
        self, run_id: int, lease: str, reason: str, kind: str, tail: str, model_fingerprint: str | None = None
    ) -> str:
        log.warning("run %s failed (%s): %s", run_id, kind, reason)
        try:
            self.client.fail(run_id, lease, reason, kind, tail, self.info, model_fingerprint)
        except (LeaseLost, ServerRefused, ConnectionError) as exc:
            log.warning("run %s: failure not recorded: %s", run_id, exc)
        return f"failed:{kind}"


def lost(renewal: Renewal, timing: Timing) -> str | None:
    """cancelled or lost when the server refused a renewal; fenced when none was accepted for fence_s."""
    if renewal.refused is not None:
        return renewal.refused
    return "fenced" if time.monotonic() - renewal.renewed_at > timing.fence_s else None


def last_error(tail: str) -> str:
    lines = [line for line in tail.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"Error|Exception|error:", line)]
    return (errors or lines or ["no output"])[-1][:500]
