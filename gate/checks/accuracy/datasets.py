"""Air-gapped datasets: lm-eval's own task config with only its data source pointed at local files.

The override folder is passed with --include_path; lm-eval then loads our `gsm8k.yaml`, which `include:`s the
upstream file, so prompt, few-shot, generation settings and filters stay upstream's and the task keeps its name.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# task -> (upstream config relative to lm_eval/tasks, split files expected in the local folder)
LOCAL_TASKS = {
    "gsm8k": ("gsm8k/gsm8k.yaml", {"train": "train.jsonl", "test": "test.jsonl"}),
}


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks  # the heavy dependency enters here, lazily

    return Path(lm_eval.tasks.__file__).resolve().parent


def write_overrides(data_dirs: dict[str, Path], out_dir: Path) -> Path:
    """Write one override per task that has a local copy; returns the folder for --include_path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    upstream_root = lm_eval_tasks_dir()
    for task, data_dir in data_dirs.items():
        if task not in LOCAL_TASKS:
            raise ValueError(f"no local-data override is known for task {task!r} (known: {', '.join(LOCAL_TASKS)})")
        upstream, splits = LOCAL_TASKS[task]
        files = {split: str((data_dir / name).resolve()) for split, name in splits.items()}
        missing = [path for path in files.values() if not Path(path).is_file()]
        if missing:
            raise FileNotFoundError(f"local data for {task} is missing: {', '.join(missing)}")
        override = {
            "include": str(upstream_root / upstream),
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": files},
        }
        (out_dir / f"{task}.yaml").write_text(yaml.safe_dump(override, sort_keys=False))
    return out_dir
