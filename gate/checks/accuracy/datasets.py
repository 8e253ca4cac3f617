"""`--local-data TASK=DIR`: a task's split files laid out as an entry of a dataset mirror (gate.checks.accuracy.mirror).

The entry has the hub repo's shape (a README.md whose `configs:` block names the split files, links to DIR's), and
the task's override is the mirror's: upstream's task file `include:`d, only `dataset_path` changed. The upstream
file of each task is known here, so no task index is read. On a sandboxed worker the folder also holds the
code-executing tasks' overrides (gate.checks.accuracy.code_tasks), from local data where some is given.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gate.checks.accuracy import code_tasks, mirror

# task -> (upstream config relative to lm_eval/tasks, hub dataset, its config, split files expected in DIR)
LOCAL_TASKS = {
    "gsm8k": ("gsm8k/gsm8k.yaml", "openai/gsm8k", "main", {"train": "train.jsonl", "test": "test.jsonl"}),
    "humaneval": ("humaneval/humaneval.yaml", "openai/openai_humaneval", "openai_humaneval", {"test": "test.jsonl"}),
}


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks  # the heavy dependency enters here, lazily

    return Path(lm_eval.tasks.__file__).resolve().parent


def write_entry(dataset: str, config: str, files: dict[str, Path], mirror_dir: Path) -> Path:
    """A mirror entry for one config of a dataset: links to the split files and the README naming them."""
    entry = mirror_dir / dataset
    (entry / config).mkdir(parents=True, exist_ok=True)
    data_files = []
    for split, path in files.items():
        link = entry / config / path.name
        link.unlink(missing_ok=True)
        link.symlink_to(path.resolve())
        data_files.append({"split": split, "path": f"{config}/{path.name}"})
    card = {"configs": [{"config_name": config, "data_files": data_files}]}
    (entry / "README.md").write_text(f"---\n{yaml.safe_dump(card, sort_keys=False)}---\n")
    return entry


def write_overrides(
    data_dirs: dict[str, Path], out_dir: Path, mirror_dir: Path, sandboxed: bool = False
) -> mirror.Prepared:
    """Lay out each task's local files in mirror_dir and write its override; on a sandboxed worker, the sandboxed
    code tasks' overrides too (upstream's data source where no local copy is given)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    upstream_root = lm_eval_tasks_dir()
    for task, data_dir in data_dirs.items():
        if task not in LOCAL_TASKS:
            raise ValueError(f"no local-data override is known for task {task!r} (known: {', '.join(LOCAL_TASKS)})")
        if task in code_tasks.SANDBOXED and not sandboxed:
            raise ValueError(
                f"{task} executes model-written code: only a worker labelled sandboxed has local data for it"
            )
        upstream, dataset, config, splits = LOCAL_TASKS[task]
        files = {split: data_dir / name for split, name in splits.items()}
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise FileNotFoundError(f"local data for {task} is missing: {', '.join(missing)}")
        entry = write_entry(dataset, config, files, mirror_dir)
        mirror.write_override(task, upstream_root / upstream, entry, out_dir)
    for task in code_tasks.SANDBOXED if sandboxed else ():
        if task not in data_dirs:
            mirror.write_override(task, upstream_root / code_tasks.SANDBOXED[task], None, out_dir)
    return mirror.Prepared(out_dir, mirror.content([mirror_dir]))
