"""What a worker executes for a claimed alignment run: the probe, every side process under the agent's watch.

The agent holds the lease; this part resolves and fingerprints the candidate, runs tokenizer, sides and decoder as
supervised processes (a cancel, a lost lease, a fence, a drain or the time limit stops the one running), and
uploads the report once. The server judges it: the outcome written here is not trusted.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gate.checks.alignment import execute as probe
from gate.checks.alignment import spec
from gate.worker import fingerprint, modelref
from gate.worker.agent import classify, last_error, lost
from gate.worker.client import LeaseLost, ServerRefused
from gate.worker.config import ClaimedRun, WorkerConfig
from gate.worker.engines import OFFLINE_ENV, SERVED_MODEL
from gate.worker.process import Evaluation, Invocation

if TYPE_CHECKING:
    from gate.worker.agent import Agent, Timing
    from gate.worker.renewal import Renewal

log = logging.getLogger("gate.worker")
KIND = "alignment"


class Stopped(Exception):
    """The agent stopped a side process: cancelled, lost, fenced, drained or timed out (what happened)."""


class Supervised:
    """A probe.Runner whose processes the agent supervises, within the run's time limit."""

    def __init__(
        self,
        agent: Agent,
        claimed: ClaimedRun,
        timing: Timing,
        renewal: Renewal,
        folder: Path,
        model_fingerprint: str | None,
    ) -> None:
        self.agent, self.claimed, self.timing, self.renewal = agent, claimed, timing, renewal
        self.folder, self.model_fingerprint = folder, model_fingerprint
        self.deadline = time.monotonic() + timing.time_limit_s

    def __call__(self, argv: list[str], env: dict[str, str], name: str, what: str) -> None:
        evaluation = Evaluation(Invocation(argv, env, self.folder / name), self.folder / f"{name}.log")
        left = self.deadline - time.monotonic()
        stopped = self.agent.supervise(
            self.claimed, self.timing, self.renewal, evaluation, left, self.model_fingerprint
        )
        if stopped is not None:
            raise Stopped(stopped)
        code = evaluation.wait()
        if code != 0:
            tail = evaluation.log_tail
            raise probe.SideFailed(f"{what} failed (exit {code}): {last_error(tail)}", code, tail)


def gsm8k_dir(config: WorkerConfig) -> Path | None:
    """The worker's local GSM8K test.jsonl folder: its entry of openai/gsm8k, from `--local-data gsm8k=DIR` (read back
    from its task override) or the dataset mirror, when that holds the file (a hub snapshot holds parquet)."""
    override = config.include_path / "gsm8k.yaml" if config.include_path else None
    if override is not None and override.is_file():
        entry = Path(yaml.safe_load(override.read_text())["dataset_path"])
    elif config.dataset_mirror is not None:
        entry = config.dataset_mirror / "openai" / "gsm8k"
    else:
        return None
    return entry / "main" if (entry / "main" / "test.jsonl").is_file() else None


def _resolved(checked: dict[str, Any], config: WorkerConfig) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The spec with each side's model as this worker loads it (a ModelScope id downloaded, a path made absolute),
    and the worker's servers by role (probe.execute's `servers`): an openai side asks this worker's own server
    (--openai-base-url), a vLLM candidate the worker's warm engine when it holds one for this run
    (gate.checks.alignment.engine)."""
    runnable = dict(checked)
    servers: dict[str, dict[str, str]] = {}
    for role in ("candidate", "reference"):
        side = checked[role]
        if side["backend"] != "openai":  # a server's model is a name, not files here
            runnable[role] = {**side, "model": modelref.resolve(side["model"], config.work_dir / "models")}
        if role == "candidate" and config.warm_base_url and side["backend"] in ("vllm", "vllm-ascend"):
            servers[role] = {"base_url": f"{config.warm_base_url}/v1", "served_model_name": SERVED_MODEL}
        elif side["backend"] == "openai" and config.openai_base_url is None:
            raise ValueError(f"the {role} uses the openai backend and this worker has no server (--openai-base-url).")
        elif side["backend"] == "openai" and config.openai_base_url is not None:
            servers[role] = {"base_url": config.openai_base_url}
    return runnable, servers


def execute(agent: Agent, claimed: ClaimedRun, timing: Timing, renewal: Renewal) -> str:
    """Probe the claimed run's candidate against its reference under the agent's lease. Returns what happened."""
    run_id, lease = claimed["run_id"], claimed["lease"]
    config = agent.config
    model_fingerprint = None
    try:
        checked = spec.check(claimed.get("options"))
        runnable, servers = _resolved(checked, config)
        candidate = runnable["candidate"]
        if candidate["backend"] != "openai":
            folder = modelref.local_folder(candidate["model"])
            model_fingerprint = fingerprint.fingerprint(folder, config.work_dir / "fingerprints.json").digest
    except (modelref.ModelUnavailable, ValueError) as exc:
        return agent.report_failure(run_id, lease, str(exc), "user", "", model_fingerprint)
    if gone := lost(renewal, timing):  # the lease went while the models were fetched or fingerprinted
        log.warning("run %s: not starting, the lease is %s", run_id, gone)
        return gone
    attempt = config.work_dir / "alignment" / str(run_id)
    shutil.rmtree(attempt, ignore_errors=True)  # an earlier attempt's (or server's) files are not this one's
    runner = Supervised(agent, claimed, timing, renewal, attempt / "processes", model_fingerprint)
    env = {**OFFLINE_ENV, **config.extra_env}
    try:
        report = probe.execute(runnable, attempt / "probe", config.python, env, gsm8k_dir(config), runner, servers)
    except Stopped as stop:
        return str(stop)
    except probe.SideFailed as exc:
        kind = "user" if exc.exit_code == probe.BAD_INPUT else classify(exc.exit_code or -1, exc.tail)
        return agent.report_failure(run_id, lease, str(exc), kind, exc.tail, model_fingerprint)
    except ValueError as exc:  # a probe text too short to predict, a GSM8K folder this worker lacks
        return agent.report_failure(run_id, lease, str(exc), "user", "", model_fingerprint)
    report["spec"] = checked  # the run's spec as the server stored it; the sides' summaries name what was loaded
    body = {"lease": lease, "report": report, "environment": agent.info, "model_fingerprint": model_fingerprint}
    try:
        agent.client.upload(run_id, KIND, body)
    except LeaseLost as exc:
        log.warning("run %s: report refused, the lease is gone: %s", run_id, exc)
        return "lost"
    except ServerRefused as exc:
        return agent.report_failure(
            run_id, lease, f"the server refused the report: {exc}", "user", "", model_fingerprint
        )
    log.info("run %s: alignment report recorded (%s)", run_id, report["outcome"])
    return "completed"
