"""What a worker executes for a claimed smoke run: generate each prompt's output in a supervised process, report.

The agent holds the lease; this part resolves and fingerprints the model, then runs `gate.checks.smoke.generate`
as a supervised process (a cancel, a lost lease, a fence, a drain or the time limit stops it) and uploads its report
once. The server judges it. For the openai backend the worker's own server (--openai-base-url) answers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate.checks.smoke import spec
from gate.worker import fingerprint, modelref
from gate.worker.agent import classify, last_error, lost
from gate.worker.client import LeaseLost, ServerRefused
from gate.worker.config import ClaimedRun, WorkerConfig
from gate.worker.engines import ASCEND_ENV, OFFLINE_ENV, SERVED_MODEL
from gate.worker.process import Evaluation, Invocation

if TYPE_CHECKING:
    from gate.worker.agent import Agent, Timing
    from gate.worker.renewal import Renewal

log = logging.getLogger("gate.worker")
KIND = "smoke"
BAD_INPUT = 2  # the generate module's exit code for input it refuses (a user's error, not the machine's)
CPU_KV_CACHE_GIB = "1"  # vLLM's CPU build reserves 4 GiB by default and refuses to start on small machines


def environment(checked: dict[str, Any], config: WorkerConfig) -> dict[str, str]:
    """The generating process's environment: offline, and the device selection and platform settings every check
    uses (the card's vLLM-Ascend variables on an NPU); the worker's own settings (extra_env) win."""
    env = dict(OFFLINE_ENV)
    kind = spec.device_kind(checked["device"])
    ids = spec.device_ids(checked["device"]) or ",".join(str(d) for d in config.devices)
    if checked["backend"] == "openai" or config.warm_base_url:
        pass  # the server's devices are its operator's, or the warm engine's own
    elif kind == "npu":  # as the model card runs: export VLLM_ASCEND_RT_DEVICES=0, the task queue, segments
        env.update(ASCEND_ENV)
        if ids:
            env["ASCEND_RT_VISIBLE_DEVICES"] = env["VLLM_ASCEND_RT_DEVICES"] = ids
    elif kind == "cuda":
        if ids:
            env["CUDA_VISIBLE_DEVICES"] = ids
    else:
        if "OMP_NUM_THREADS" not in os.environ:  # torch's default threads on a small machine: 5-20x slower, erratic
            env["OMP_NUM_THREADS"] = "1"
        if checked["backend"] == "vllm":
            env["VLLM_CPU_KVCACHE_SPACE"] = CPU_KV_CACHE_GIB
    return {**env, **config.extra_env}


def job(checked: dict[str, Any], config: WorkerConfig) -> tuple[dict[str, Any], Path | None]:
    """The generate process's input for this worker, and the model folder to fingerprint (None for a server's)."""
    if checked["backend"] == "openai":
        if not config.openai_base_url:
            raise ValueError("this worker has no server for the openai backend (gate worker --openai-base-url).")
        tokenizer = config.openai_tokenizer
        folder = Path(tokenizer).absolute() if tokenizer and Path(tokenizer).is_dir() else None
        server = {"base_url": config.openai_base_url, "model": config.openai_model or checked["model"]}
        return {"spec": checked, "model": None, "config_dir": str(folder) if folder else None, "openai": server}, None
    model_path = modelref.resolve(checked["model"], config.work_dir / "models")
    folder = modelref.local_folder(model_path)
    # on the worker's warm engine (gate worker --warm-engine), the server that holds this model answers
    warm = {"base_url": f"{config.warm_base_url}/v1", "model": SERVED_MODEL} if config.warm_base_url else None
    return {"spec": checked, "model": model_path, "config_dir": str(folder), "openai": warm}, folder


def execute(agent: Agent, claimed: ClaimedRun, timing: Timing, renewal: Renewal) -> str:
    """Generate the claimed run's sample outputs under the agent's lease. Returns what happened."""
    run_id, lease = claimed["run_id"], claimed["lease"]
    config = agent.config
    model_fingerprint = None
    try:
        checked = spec.check(claimed.get("options"))
        if checked["engine_args"].get("trust_remote_code") and not config.allow_trust_remote_code:
            raise ValueError("trust_remote_code is not allowed on this worker (--allow-trust-remote-code).")
        work, folder = job(checked, config)
        if folder is not None:
            model_fingerprint = fingerprint.fingerprint(folder, config.work_dir / "fingerprints.json").digest
    except (modelref.ModelUnavailable, ValueError) as exc:
        return agent.report_failure(run_id, lease, str(exc), "user", "", model_fingerprint)
    if gone := lost(renewal, timing):  # the lease went while the model was fetched or fingerprinted
        log.warning("run %s: not starting, the lease is %s", run_id, gone)
        return gone
    attempt = (config.work_dir / "smoke" / str(run_id)).resolve()
    shutil.rmtree(attempt, ignore_errors=True)  # an earlier attempt's (or server's) files are not this one's
    attempt.mkdir(parents=True)
    (attempt / "job.json").write_text(json.dumps(work))
    out = attempt / "report.json"
    argv = [config.python, "-m", "gate.checks.smoke.generate", str(attempt / "job.json"), str(out)]
    invocation = Invocation(argv, environment(checked, config), attempt / "generate")
    evaluation = Evaluation(invocation, attempt / "generate.log")
    stopped = agent.supervise(claimed, timing, renewal, evaluation, timing.time_limit_s, model_fingerprint)
    if stopped is not None:
        return stopped
    code, tail = evaluation.wait(), evaluation.log_tail
    if code != 0:
        kind = "user" if code == BAD_INPUT else classify(code, tail)
        reason = f"generating the outputs failed (exit {code}): {last_error(tail)}"
        return agent.report_failure(run_id, lease, reason, kind, tail, model_fingerprint)
    report = json.loads(out.read_text())
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
    log.info("run %s: smoke report recorded", run_id)
    return "completed"
