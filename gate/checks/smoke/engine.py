"""The warm engine a smoke run can use: its model's weights, dtype and engine arguments, on the spec's devices."""

from __future__ import annotations

from gate.checks.smoke import spec
from gate.worker import engines, fingerprint, modelref, warm
from gate.worker.config import ClaimedRun, WorkerConfig


def wanted(claimed: ClaimedRun, config: WorkerConfig) -> warm.Wanted | None:
    checked = spec.check(claimed.get("options"))
    if checked["backend"] not in ("vllm", "vllm-ascend"):
        return None
    model_path = modelref.resolve(checked["model"], config.work_dir / "models")
    digest = fingerprint.fingerprint(modelref.local_folder(model_path), config.work_dir / "fingerprints.json").digest
    ids = spec.device_ids(checked["device"]) or ",".join(str(d) for d in config.devices)
    devices = engines.device_env(spec.device_kind(checked["device"]), ids)
    return warm.Wanted(model_path, digest, {"dtype": checked["dtype"], **checked["engine_args"]}, devices)
