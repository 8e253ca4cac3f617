"""Air-gapped datasets: lm-eval's own task config with only its data source pointed at local files.

The override folder is passed with --include_path; lm-eval then loads our `gsm8k.yaml`, which `include:`s the
upstream file, so prompt, few-shot, generation settings and filters stay upstream's and the task keeps its name.
On a sandboxed worker the folder also holds the code-executing tasks' overrides (gate.checks.accuracy.code_tasks),
with their local data source where one is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gate.checks.accuracy import code_tasks

# task -> (upstream config relative to lm_eval/tasks, split files expected in the local folder)
LOCAL_TASKS = {
    "gsm8k": ("gsm8k/gsm8k.yaml", {"train": "train.jsonl", "test": "test.jsonl"}),
    "humaneval": ("humaneval/humaneval.yaml", {"test": "test.jsonl"}),  # openai_humaneval's fields
}


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks  # the heavy dependency enters here, lazily

    return Path(lm_eval.tasks.__file__).resolve().parent


def write_overrides(data_dirs: dict[str, Path], out_dir: Path, sandboxed: bool = False) -> Path:
    """Write one override per task that has a local copy, and per sandboxed code task on a sandboxed worker;
    returns the folder for --include_path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    upstream_root = lm_eval_tasks_dir()
    overrides: dict[str, dict[str, Any]] = {}
    for task, data_dir in data_dirs.items():
        if task not in LOCAL_TASKS:
            raise ValueError(f"no local-data override is known for task {task!r} (known: {', '.join(LOCAL_TASKS)})")
        upstream, splits = LOCAL_TASKS[task]
        files = {split: str((data_dir / name).resolve()) for split, name in splits.items()}
        missing = [path for path in files.values() if not Path(path).is_file()]
        if missing:
            raise FileNotFoundError(f"local data for {task} is missing: {', '.join(missing)}")
        overrides[task] = {
            "include": str(upstream_root / upstream),
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": files},
        }
    for task in code_tasks.SANDBOXED if sandboxed else ():
        source = {key: value for key, value in overrides.get(task, {}).items() if key != "include"}
        overrides[task] = {**code_tasks.config(task, upstream_root), **source}
    for task, override in overrides.items():
        (out_dir / f"{task}.yaml").write_text(code_tasks.dump(override))
    return out_dir
