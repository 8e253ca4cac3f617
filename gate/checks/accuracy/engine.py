"""The warm engine an accuracy run can use: its model's weights and the vLLM arguments of its model_args."""

from __future__ import annotations

from gate.checks.accuracy import command
from gate.runs.options import RunOptions
from gate.worker import fingerprint, modelref, warm
from gate.worker.config import ClaimedRun, WorkerConfig


def wanted(claimed: ClaimedRun, config: WorkerConfig) -> warm.Wanted | None:
    options = RunOptions.model_validate(claimed.get("options") or {})
    model_path = modelref.resolve(claimed["model"], config.work_dir / "models")
    folder = modelref.local_folder(model_path, options.model_args.revision)
    digest = fingerprint.fingerprint(folder, config.work_dir / "fingerprints.json").digest
    args = command.engine_args(config.backend, options.model_args, config)
    return warm.Wanted(model_path, digest, args, warm.worker_devices(config))
