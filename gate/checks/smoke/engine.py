"""The warm engine a smoke run can use: its model's weights, dtype and engine arguments, on the spec's devices."""

from __future__ import annotations

from gate.checks.smoke import spec
from gate.worker import engines, warm
from gate.worker.config import ClaimedRun, WorkerConfig


def wanted(claimed: ClaimedRun, config: WorkerConfig) -> warm.Wanted | None:
    checked = spec.check(claimed.get("options"))
    if checked["backend"] not in ("vllm", "vllm-ascend"):
        return None
    ids = spec.device_ids(checked["device"]) or ",".join(str(d) for d in config.devices)
    devices = engines.device_env(spec.device_kind(checked["device"]), ids)
    args = {"dtype": checked["dtype"], **checked["engine_args"]}
    return warm.wanted_for(checked["model"], args, devices, config)
