"""The warm engine a serving run can use: its model's weights and the spec's engine arguments and devices."""

from __future__ import annotations

from gate.checks.serving import launch, spec
from gate.worker import warm
from gate.worker.config import ClaimedRun, WorkerConfig


def wanted(claimed: ClaimedRun, config: WorkerConfig) -> warm.Wanted | None:
    checked = spec.check(claimed.get("options"))
    if checked["backend"] not in ("vllm", "vllm-ascend"):
        return None
    return warm.wanted_for(checked["model"], checked["engine_args"], launch.device_env(checked, config), config)
