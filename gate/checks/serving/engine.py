"""The warm engine a serving run can use: its model's weights and the spec's engine arguments and devices."""

from __future__ import annotations

from gate.checks.serving import launch, spec
from gate.worker import fingerprint, modelref, warm
from gate.worker.config import ClaimedRun, WorkerConfig


def wanted(claimed: ClaimedRun, config: WorkerConfig) -> warm.Wanted | None:
    checked = spec.check(claimed.get("options"))
    if checked["backend"] not in ("vllm", "vllm-ascend"):
        return None
    model_path = modelref.resolve(checked["model"], config.work_dir / "models")
    digest = fingerprint.fingerprint(modelref.local_folder(model_path), config.work_dir / "fingerprints.json").digest
    return warm.Wanted(model_path, digest, checked["engine_args"], launch.device_env(checked, config))
