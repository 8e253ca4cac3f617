"""The warm engine an accuracy run can use: its model's weights and the vLLM arguments of its model_args."""

from __future__ import annotations

from gate.checks.accuracy import command
from gate.runs.options import RunOptions
from gate.worker import warm
from gate.worker.config import ClaimedRun, WorkerConfig


def wanted(claimed: ClaimedRun, config: WorkerConfig) -> warm.Wanted | None:
    options = RunOptions.model_validate(claimed.get("options") or {})
    args = command.engine_args(config.backend, options.model_args, config)
    devices = warm.worker_devices(config)
    return warm.wanted_for(claimed["model"], args, devices, config, options.model_args.revision)
