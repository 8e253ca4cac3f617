"""Each attempt starts lm-eval in a fresh, empty folder: no leftovers of an earlier server's run with the same id,
and nothing importable beside it (a `secrets.py` next to the worker must not replace the standard library's)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gate.worker.process import Evaluation, Invocation

PROBE = "import os, secrets; print(secrets.__file__); print(sorted(os.listdir('.')))"


def test_an_attempt_starts_clean_and_imports_nothing_from_beside_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    (worker_dir / "secrets.py").write_text("raise SystemExit('imported the stray secrets.py')\n")
    monkeypatch.chdir(worker_dir)
    output = worker_dir / "run-1" / "attempt-1"
    (output / "old-model").mkdir(parents=True)
    (output / "old-model" / "results_2026-01-01T00-00-00.json").write_text("{}")  # an earlier server's run 1

    evaluation = Evaluation(Invocation(argv=[sys.executable, "-c", PROBE], env={}, output_dir=output), output / "log")
    assert evaluation.wait(60) == 0, evaluation.log_tail
    module_file, listing = evaluation.log_tail.splitlines()[-2:]
    assert Path(module_file).parent != worker_dir and Path(module_file).name == "secrets.py"
    assert listing == "[]"  # an empty working directory
    assert not list(output.rglob("results_*.json"))


def printing(lines: list[str], tmp_path: Path) -> Evaluation:
    """An evaluation whose process prints `lines` and ends."""
    script = "import sys; sys.stdout.write(" + repr("\n".join(lines) + "\n") + ")"
    output = tmp_path / "attempt-1"
    evaluation = Evaluation(Invocation(argv=[sys.executable, "-c", script], env={}, output_dir=output), output / "log")
    assert evaluation.wait(60) == 0
    return evaluation


def test_progress_counts_the_questions_answered_from_the_cache(tmp_path: Path) -> None:
    """lm-eval's bar counts only what is left to run after its response cache answered the rest."""
    lines = [
        "INFO Cached requests: 8, Requests remaining: 4",
        "Running generate_until requests:  50%|#####     | 2/4 [00:01<00:01,  2.0it/s]",
    ]
    evaluation = printing(lines, tmp_path)
    assert (evaluation.done, evaluation.total) == (10, 12)


def test_the_sharded_drivers_running_estimate_is_read_shard_by_shard(tmp_path: Path) -> None:
    """What the heartbeat sends on: every `gate: estimate` line, in order, with the run's total."""
    lines = [
        "Running generate_until requests: sharded, 0 correct | 40/1319",
        'gate: estimate {"total": 1319, "point": [40, 0, 0.0, 0.969674]}',
        "Running generate_until requests: sharded, 1 correct | 80/1319",
        'gate: estimate {"total": 1319, "point": [80, 1, 0.000758, 0.940106]}',
    ]
    evaluation = printing(lines, tmp_path)
    assert evaluation.estimate == {"total": 1319, "points": [[40, 0, 0.0, 0.969674], [80, 1, 0.000758, 0.940106]]}
    assert (evaluation.done, evaluation.total) == (80, 1319)
