"""What a worker executes for a claimed accuracy run: lm-eval on the model, then the upload of its files.

The agent (gate.worker.agent) holds the lease; this part fetches and fingerprints the model, builds the lm-eval
command, lets the agent supervise it, and uploads the results exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from gate.checks.accuracy import command, generation, mirror
from gate.runs.options import RunOptions
from gate.worker import fingerprint, modelref
from gate.worker.agent import classify, last_error, lost
from gate.worker.client import LeaseLost, ServerRefused
from gate.worker.config import ClaimedRun, WorkerConfig
from gate.worker.process import Evaluation, Invocation

if TYPE_CHECKING:
    from gate.worker.agent import Agent, Timing
    from gate.worker.renewal import Renewal

log = logging.getLogger("gate.worker")


def execute(agent: Agent, claimed: ClaimedRun, timing: Timing, renewal: Renewal) -> str:
    """Evaluate the claimed run with lm-eval under the agent's lease. Returns what happened."""
    run_id, lease = claimed["run_id"], claimed["lease"]
    config = agent.config
    model_fingerprint = None
    try:
        options = RunOptions.model_validate(claimed.get("options") or {})
        if config.dataset_mirror is not None:  # before the model is fetched: a task it cannot serve is refused
            config = _on_mirror(config, config.dataset_mirror, claimed)
        model_path = modelref.resolve(claimed["model"], config.work_dir / "models")
        cache_path = None  # no fingerprint, no cache: answers cached under a name could be another model's
        if config.backend != "openai":  # an OpenAI-compatible server's weights are out of sight
            folder = modelref.local_folder(model_path, options.model_args.revision)
            # the renewal thread keeps the lease: a large checkpoint on a slow disk takes minutes the first time
            model_fingerprint = fingerprint.fingerprint(folder, config.work_dir / "fingerprints.json").digest
            key = command.cache_key(model_fingerprint, config.backend, agent.info["device"]["kind"], options)
            cache = config.work_dir / "cache" / key
            cache.mkdir(parents=True, exist_ok=True)
            cache_path = cache / "responses"
        invocation = command.build(claimed, model_path, config, cache_path)
    except (command.RefusedRun, modelref.ModelUnavailable, ValidationError, ValueError) as exc:
        return agent.report_failure(run_id, lease, str(exc), "user", "", model_fingerprint)
    if gone := lost(renewal, timing):  # the lease went while the model was fetched or fingerprinted
        log.warning("run %s: not starting, the lease is %s", run_id, gone)
        return gone
    evaluation = Evaluation(invocation, invocation.output_dir / "lm_eval.log")
    time_limit = options.time_limit_s or timing.time_limit_s
    stopped = agent.supervise(claimed, timing, renewal, evaluation, time_limit, model_fingerprint)
    if stopped is not None:
        return stopped
    return _finish(agent, claimed, options, model_path, invocation, evaluation, model_fingerprint)


def _on_mirror(config: WorkerConfig, dataset_mirror: Path, claimed: ClaimedRun) -> WorkerConfig:
    """The run's tasks pointed at the mirror (their overrides), with a datasets cache of their content."""
    tasks_dir = config.work_dir / f"run-{claimed['run_id']}" / f"attempt-{claimed.get('attempt', 1)}.tasks"
    prepared = mirror.prepare(claimed["tasks"], dataset_mirror, tasks_dir)
    env = {**config.extra_env, "HF_DATASETS_CACHE": str(config.work_dir / "datasets" / prepared.content)}
    return replace(config, include_path=prepared.include_path, extra_env=env)


def _finish(
    agent: Agent,
    claimed: ClaimedRun,
    options: RunOptions,
    model_path: str,
    invocation: Invocation,
    evaluation: Evaluation,
    model_fingerprint: str | None,
) -> str:
    run_id, lease = claimed["run_id"], claimed["lease"]
    config = agent.config
    code = evaluation.wait()
    tail = evaluation.log_tail
    if code != 0:
        reason = f"lm-eval exited with {code}: {last_error(tail)}"
        return agent.report_failure(run_id, lease, reason, classify(code, tail), tail, model_fingerprint)
    results = sorted(invocation.output_dir.rglob("results_*.json"))
    samples: list[Path] = sorted(invocation.output_dir.rglob("samples_*.jsonl"))
    if len(results) != 1:
        reason = f"lm-eval wrote {len(results)} results files, expected 1"
        return agent.report_failure(run_id, lease, reason, "infrastructure", tail, model_fingerprint)
    env = {
        **agent.info,
        "generation": generation.truncation(
            samples,
            options.model_args.tokenizer or (model_path if config.backend != "openai" else config.openai_tokenizer),
            options.gen_kwargs.max_gen_toks,
        ),
    }
    try:
        agent.client.complete(run_id, lease, results[0], samples, env, tail, model_fingerprint)
    except LeaseLost as exc:
        log.warning("run %s: result refused, the lease is gone: %s", run_id, exc)
        return "lost"
    except ServerRefused as exc:
        reason = f"the server refused the results: {exc}"
        return agent.report_failure(run_id, lease, reason, "user", tail, model_fingerprint)
    log.info("run %s: results recorded", run_id)
    return "completed"
