"""The warm engine an alignment run's candidate can use: its weights, dtype and engine arguments on the worker's
devices. A run comparing two precisions of the candidate needs two engines, so it runs without a warm one."""

from __future__ import annotations

from gate.checks.alignment import spec
from gate.worker import warm
from gate.worker.config import ClaimedRun, WorkerConfig

VLLM_MAX_LOGPROBS = 20  # vLLM's default max_logprobs: a server started without the flag answers top_k up to this


def wanted(claimed: ClaimedRun, config: WorkerConfig) -> warm.Wanted | None:
    checked = spec.check(claimed.get("options"))
    candidate = checked["candidate"]
    if candidate["backend"] not in ("vllm", "vllm-ascend") or checked["precisions"]:
        return None
    args = {"dtype": candidate["dtype"], **candidate["engine_args"]}
    if checked["top_k"] > VLLM_MAX_LOGPROBS:  # only then: the same engine as accuracy and smoke runs otherwise
        args["max_logprobs"] = max(int(args.get("max_logprobs", 0)), checked["top_k"])
    return warm.wanted_for(candidate["model"], args, warm.worker_devices(config), config)
