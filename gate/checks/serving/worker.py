"""What a worker executes for a claimed serving run: serve the model, drive it with `vllm bench serve`, report.

The agent holds the lease; the server, its readiness wait and every benchmark round run as supervised processes
(a cancel, a lost lease, a fence, a drain or the time limit stops the one running, and the server with it). For the
openai backend the server is already running and only the benchmark is run. The server judges the report.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate.checks.serving import bench, launch, serverlog, spec
from gate.worker import fingerprint, modelref
from gate.worker.agent import classify, last_error, lost
from gate.worker.client import LeaseLost, ServerRefused
from gate.worker.config import ClaimedRun
from gate.worker.process import Evaluation, Invocation

if TYPE_CHECKING:
    from gate.worker.agent import Agent, Timing
    from gate.worker.renewal import Renewal

log = logging.getLogger("gate.worker")
KIND = "serving"
VERSION_TIMEOUT_S = 5.0


class Stopped(Exception):
    """The agent stopped a process: cancelled, lost, fenced, drained or timed out (what happened)."""


class Failed(Exception):
    """A process of the check failed: the reason, its kind (user or infrastructure) and the log tail to keep."""

    def __init__(self, reason: str, kind: str, tail: str) -> None:
        super().__init__(reason)
        self.kind, self.tail = kind, tail


class Session:
    """One attempt's supervised processes, within the run's time limit."""

    def __init__(self, agent: Agent, claimed: ClaimedRun, timing: Timing, renewal: Renewal, folder: Path) -> None:
        self.agent, self.claimed, self.timing, self.renewal, self.folder = agent, claimed, timing, renewal, folder
        self.deadline = time.monotonic() + timing.time_limit_s
        self.model_fingerprint: str | None = None

    def run(self, invocation: Invocation, name: str, what: str, server: Evaluation | None = None) -> None:
        """Run one process to its end under the agent's watch; Stopped or Failed otherwise."""
        evaluation = Evaluation(invocation, self.folder / f"{name}.log")
        left = self.deadline - time.monotonic()
        stopped = self.agent.supervise(
            self.claimed, self.timing, self.renewal, evaluation, left, self.model_fingerprint
        )
        if stopped is not None:
            raise Stopped(stopped)
        code = evaluation.wait()
        if code != 0:
            # a benchmark fails because its server did: the server's log says why
            tail = server.log_tail if server is not None and server.poll() is not None else evaluation.log_tail
            raise Failed(f"{what} failed (exit {code}): {last_error(tail)}", classify(code, tail), tail)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((launch.HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def served_version(base_url: str) -> str | None:
    """A running vLLM server's version (`GET /version`); None for a server that does not say."""
    try:
        with urllib.request.urlopen(f"{base_url}/version", timeout=VERSION_TIMEOUT_S) as answer:
            version = json.loads(answer.read()).get("version")
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def measure(
    session: Session, checked: dict[str, Any], base_url: str, served: str, tokenizer: str, server: Evaluation | None
) -> list[dict[str, Any]]:
    """Every round at every level of the profile, as the report's levels."""
    levels = []
    config = session.agent.config
    for concurrency in checked["concurrencies"]:
        rounds = []
        for number in range(1, checked["rounds"] + 1):
            result = session.folder / "results" / f"c{concurrency}-r{number}.json"
            invocation = launch.bench(checked, concurrency, base_url, served, tokenizer, config, result)
            session.run(invocation, result.stem, f"vllm bench serve at concurrency {concurrency}", server)
            try:
                rounds.append(bench.figures(json.loads(result.read_text())))
            except (OSError, ValueError) as exc:
                tail = server.log_tail if server is not None else ""
                raise Failed(f"round {number} at concurrency {concurrency}: {exc}", "user", tail) from None
        levels.append({"concurrency": concurrency, "rounds": rounds})
    return levels


def serve_and_measure(session: Session, checked: dict[str, Any], model_path: str) -> tuple[dict[str, Any], str]:
    """Start the server, wait for it, measure, stop it: the report's server figures, levels and version."""
    port = free_port()
    base_url = f"http://{launch.HOST}:{port}"
    invocation = launch.server(checked, model_path, session.agent.config, port, session.folder / "server")
    session.agent.record(invocation)  # the server is watched through its benchmarks, not supervised itself
    server = Evaluation(invocation, session.folder / "server.log")
    try:
        started = time.monotonic()
        try:
            session.run(launch.ready(base_url, server.process.pid, session.folder / "ready"), "ready", "the server")
        except Failed:
            server.stop(session.timing.cancel_grace_s)
            tail = server.log_tail
            raise Failed(f"the vLLM server did not start: {last_error(tail)}", classify(1, tail), tail) from None
        log.info("run %s: vLLM server ready in %.1f s", session.claimed["run_id"], time.monotonic() - started)
        levels = measure(session, checked, base_url, launch.SERVED_MODEL, model_path, server)
    finally:
        server.stop(session.timing.cancel_grace_s)
    text = (session.folder / "server.log").read_text("utf-8", "replace")
    found = {"vllm_version": serverlog.version(text), "server": serverlog.read(text), "levels": levels}
    return found, server.log_tail


def execute(agent: Agent, claimed: ClaimedRun, timing: Timing, renewal: Renewal) -> str:
    """Measure the claimed run's serving performance under the agent's lease. Returns what happened."""
    run_id, lease = claimed["run_id"], claimed["lease"]
    config = agent.config
    model_fingerprint = None
    try:
        checked = spec.check(claimed.get("options"))
        if checked["engine_args"].get("trust_remote_code") and not config.allow_trust_remote_code:
            raise ValueError("trust_remote_code is not allowed on this worker (--allow-trust-remote-code).")
        if checked["backend"] == "openai":
            if not config.openai_base_url:
                raise ValueError("this worker has no server for the openai backend (gate worker --openai-base-url).")
            model_path = checked["model"]  # the name the running server serves
        else:
            model_path = modelref.resolve(checked["model"], config.work_dir / "models")
            folder = modelref.local_folder(model_path)
            model_fingerprint = fingerprint.fingerprint(folder, config.work_dir / "fingerprints.json").digest
    except (modelref.ModelUnavailable, ValueError) as exc:
        return agent.report_failure(run_id, lease, str(exc), "user", "", model_fingerprint)
    if gone := lost(renewal, timing):  # the lease went while the model was fetched or fingerprinted
        log.warning("run %s: not starting, the lease is %s", run_id, gone)
        return gone
    attempt = (config.work_dir / "serving" / str(run_id)).resolve()
    shutil.rmtree(attempt, ignore_errors=True)  # an earlier attempt's (or server's) files are not this one's
    session = Session(agent, claimed, timing, renewal, attempt)
    session.model_fingerprint = model_fingerprint
    try:
        if checked["backend"] == "openai":
            assert config.openai_base_url is not None
            root = config.openai_base_url.rstrip("/").removesuffix("/v1")
            tokenizer = config.openai_tokenizer or checked["model"]
            levels = measure(session, checked, root, checked["model"], tokenizer, None)
            found = {"vllm_version": served_version(root), "server": serverlog.read(""), "levels": levels}
            tail = ""
        elif config.warm_base_url:  # the worker's warm engine serves this model with the spec's engine arguments
            levels = measure(session, checked, config.warm_base_url, launch.SERVED_MODEL, model_path, None)
            # its start-up figures (load time, weights' memory, KV cache) are in its log from when it started
            text = config.warm_log.read_text("utf-8", "replace") if config.warm_log else ""
            version = served_version(config.warm_base_url)
            found = {"vllm_version": version, "server": serverlog.read(text), "levels": levels}
            tail = ""
        else:
            found, tail = serve_and_measure(session, checked, model_path)
    except Stopped as stop:
        return str(stop)
    except Failed as exc:
        return agent.report_failure(run_id, lease, str(exc), exc.kind, exc.tail, model_fingerprint)
    report = {
        "spec": checked,
        "vllm_version": found["vllm_version"],
        "device_kind": spec.device_kind(checked["device"]),
        "engine_args": checked["engine_args"],
        "server": found["server"],
        "levels": found["levels"],
    }
    body = {
        "lease": lease,
        "report": report,
        "environment": agent.info,
        "log_tail": tail,
        "model_fingerprint": model_fingerprint,
    }
    try:
        agent.client.upload(run_id, KIND, body)
    except LeaseLost as exc:
        log.warning("run %s: report refused, the lease is gone: %s", run_id, exc)
        return "lost"
    except ServerRefused as exc:
        return agent.report_failure(
            run_id, lease, f"the server refused the report: {exc}", "user", "", model_fingerprint
        )
    log.info("run %s: serving report recorded", run_id)
    return "completed"
