"""A local dataset mirror laid out as the hub's client writes it: which tasks it serves (`gate datasets check`), the
overrides a worker writes for a run, and the one sentence a run it cannot serve fails with. lm-eval's own task
index decides what a group stands for; the datasets library reads the mirror as lm-eval will."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import yaml

from gate.checks.accuracy import code_tasks, mirror
from gate.checks.accuracy.datasets import lm_eval_tasks_dir, write_overrides
from gate.checks.alignment.worker import gsm8k_dir
from gate.worker.config import WorkerConfig
from tests.conftest import GSM8K_DIR
from tests.mirrors import humaneval_rows, mmlu_rows, write_dataset, write_gsm8k, write_humaneval, write_math, write_mmlu

TWO_SUBJECTS = ["abstract_algebra", "anatomy"]


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gate.cli", *args],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def subjects() -> list[str]:
    """MMLU's 57 subjects, as lm-eval's `mmlu` group names their configs of cais/mmlu."""
    return [str(leaf.config) for leaf in mirror.leaves("mmlu")]


@pytest.fixture(scope="module")
def full_mirror(tmp_path_factory: pytest.TempPathFactory, subjects: list[str]) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    write_gsm8k(root)
    write_mmlu(root, subjects)
    write_math(root)
    write_humaneval(root)
    return root


@pytest.fixture(scope="module")
def partial_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GSM8K, HumanEval and two of MMLU's subjects; no MATH."""
    root = tmp_path_factory.mktemp("partial")
    write_gsm8k(root)
    write_mmlu(root, TWO_SUBJECTS)
    write_humaneval(root)
    return root


def test_check_says_every_task_is_served(full_mirror: Path) -> None:
    checked = gate("datasets", "check", "--mirror", str(full_mirror), "--tasks", "gsm8k,mmlu,minerva_math,humaneval")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == [
        "gsm8k: served",
        "mmlu: 57 of 57 subtasks served",
        "minerva_math: 7 of 7 subtasks served",
        "humaneval: served",
    ]


def test_check_says_what_is_missing(partial_mirror: Path, subjects: list[str]) -> None:
    checked = gate("datasets", "check", "--mirror", str(partial_mirror), "--tasks", "gsm8k,mmlu,minerva_math,humaneval")
    assert checked.returncode == 1, checked.stderr
    gsm8k, mmlu, math, humaneval = checked.stdout.splitlines()
    assert (gsm8k, humaneval) == ("gsm8k: served", "humaneval: served")
    head, tail = "mmlu: 2 of 57 subtasks served; missing cais/mmlu configs ", " under "
    assert mmlu.startswith(head)
    configs, folder = mmlu.removeprefix(head).split(tail)
    assert sorted(configs.split(", ")) == sorted(set(subjects) - set(TWO_SUBJECTS))
    assert folder == f"{partial_mirror}/cais/mmlu (README.md `configs:` entries and their files)"
    math_dir = partial_mirror / "EleutherAI" / "hendrycks_math"
    assert math == (
        "minerva_math: 0 of 7 subtasks served; missing EleutherAI/hendrycks_math (configs algebra, "
        "counting_and_probability, geometry, intermediate_algebra, number_theory, prealgebra, precalculus; splits "
        f"train, test) at {math_dir}, as `hf download --repo-type dataset EleutherAI/hendrycks_math --local-dir "
        f"{math_dir}` writes it"
    )


def test_check_refuses_bad_input_with_one_sentence(tmp_path: Path) -> None:
    unknown = gate("datasets", "check", "--mirror", str(tmp_path), "--tasks", "gsm8k,gsm8k_nope")
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == "error: lm-eval knows no task, group or tag named 'gsm8k_nope'.\n"
    nowhere = tmp_path / "nowhere"
    no_folder = gate("datasets", "check", "--mirror", str(nowhere), "--tasks", "gsm8k")
    assert (no_folder.returncode, no_folder.stderr) == (2, f"error: the mirror {nowhere} is not a folder\n")
    no_tasks = gate("datasets", "check", "--mirror", str(tmp_path), "--tasks", " , ")
    assert (no_tasks.returncode, no_tasks.stderr) == (2, "error: --tasks names no task\n")


def test_a_run_the_mirror_cannot_serve_is_refused_naming_dataset_and_files(partial_mirror: Path) -> None:
    with pytest.raises(mirror.NotInMirror) as refused:
        mirror.prepare(["gsm8k", "minerva_math_algebra"], partial_mirror, partial_mirror.parent / "tasks")
    math_dir = partial_mirror / "EleutherAI" / "hendrycks_math"
    assert str(refused.value) == (
        f"minerva_math_algebra cannot run from the dataset mirror {partial_mirror}: it lacks EleutherAI/hendrycks_math "
        f"(config algebra; splits train, test) at {math_dir}, as `hf download --repo-type dataset "
        f"EleutherAI/hendrycks_math --local-dir {math_dir}` writes it."
    )


def test_a_config_without_a_split_the_task_reads_is_not_served(tmp_path: Path) -> None:
    splits = {"test": mmlu_rows("anatomy", "test", 2), "validation": mmlu_rows("anatomy", "validation", 1)}
    write_dataset(tmp_path, "cais/mmlu", {"anatomy": splits})  # no dev split: MMLU's few-shot examples
    with pytest.raises(mirror.NotInMirror) as refused:
        mirror.prepare(["mmlu_anatomy"], tmp_path, tmp_path / "tasks")
    assert str(refused.value) == (
        f"mmlu_anatomy cannot run from the dataset mirror {tmp_path}: it lacks cais/mmlu split dev of config anatomy "
        f"under {tmp_path}/cais/mmlu (README.md `configs:` entries and their files)."
    )


def test_overrides_change_only_the_data_source_of_each_leaf_task(full_mirror: Path, tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager

    tasks = mirror.prepare(["mmlu", "gsm8k"], full_mirror, tmp_path / "tasks").include_path
    assert len(list(tasks.glob("*.yaml"))) == 58
    assert yaml.safe_load((tasks / "mmlu_anatomy.yaml").read_text()) == {
        "include": str(lm_eval_tasks_dir() / "mmlu" / "default" / "mmlu_anatomy.yaml"),
        "dataset_path": f"{full_mirror}/cais/mmlu",
    }
    # lm-eval builds the task from the override alone (no other task files indexed) and reads the mirror
    loaded = TaskManager(include_path=str(tasks), include_defaults=False).load(["gsm8k", "mmlu_anatomy"])["tasks"]
    test_rows = [json.loads(line) for line in (GSM8K_DIR / "test.jsonl").read_text().splitlines()]
    assert list(loaded["gsm8k"].test_docs()) == test_rows
    assert list(loaded["mmlu_anatomy"].test_docs()) == mmlu_rows("anatomy", "test", 1)
    assert loaded["gsm8k"].config.num_fewshot == 5 and loaded["gsm8k"].config.dataset_name == "main"


def test_a_mirror_entry_changed_in_place_gets_a_datasets_cache_of_its_own(tmp_path: Path) -> None:
    root, shared = tmp_path / "mirror", str(tmp_path / "shared-cache")
    write_mmlu(root, ["anatomy"], test_rows=1)
    before = mirror.prepare(["mmlu_anatomy"], root, tmp_path / "tasks").content
    assert datasets.load_dataset(str(root / "cais" / "mmlu"), "anatomy", cache_dir=shared)["test"].num_rows == 1
    write_mmlu(root, ["anatomy"], test_rows=2)  # a newer snapshot: the same files' names, other rows
    after = mirror.prepare(["mmlu_anatomy"], root, tmp_path / "tasks").content
    # the library keys a local folder's cache on its README alone: one cache for both contents reads stale rows
    assert datasets.load_dataset(str(root / "cais" / "mmlu"), "anatomy", cache_dir=shared)["test"].num_rows == 1
    assert before != after
    fresh = str(tmp_path / after)
    assert datasets.load_dataset(str(root / "cais" / "mmlu"), "anatomy", cache_dir=fresh)["test"].num_rows == 2


def test_humaneval_entry_holds_the_164_problems(full_mirror: Path) -> None:
    # humaneval's task names no config: lm-eval asks for the snapshot's only one, as here
    entry = datasets.load_dataset(str(full_mirror / "openai" / "openai_humaneval"), None)
    assert list(entry) == ["test"]
    assert list(entry["test"]) == humaneval_rows() and len(humaneval_rows()) == 164


def test_humaneval_from_the_mirror_is_upstreams_task_scored_in_the_sandbox(full_mirror: Path, tmp_path: Path) -> None:
    """Upstream's humaneval.yaml cannot be included air-gapped (its utils load code_eval from the hub): the mirror's
    override is that file copied, gate's scorer in place of upstream's, its data source the mirror's."""
    from lm_eval.tasks import TaskManager

    tasks = mirror.prepare(["humaneval"], full_mirror, tmp_path / "tasks").include_path
    override = yaml.load((tasks / "humaneval.yaml").read_text(), Loader=code_tasks._Loader)
    assert "include" not in override and override["dataset_path"] == f"{full_mirror}/openai/openai_humaneval"
    assert override["metric_list"][0]["metric"] == "gate.checks.accuracy.code_eval.pass_at_k"
    loaded = TaskManager(include_path=str(tasks), include_defaults=False).load(["humaneval"])["tasks"]
    assert list(loaded["humaneval"].test_docs()) == humaneval_rows()


def test_local_data_is_laid_out_as_a_mirror_entry(tmp_path: Path) -> None:
    tasks = write_overrides({"gsm8k": GSM8K_DIR}, tmp_path / "tasks", tmp_path / "mirror").include_path
    entry = tmp_path / "mirror" / "openai" / "gsm8k"
    assert yaml.safe_load((tasks / "gsm8k.yaml").read_text()) == {
        "include": str(lm_eval_tasks_dir() / "gsm8k" / "gsm8k.yaml"),
        "dataset_path": str(entry),
    }
    assert (entry / "main" / "test.jsonl").resolve() == (GSM8K_DIR / "test.jsonl").resolve()
    assert (entry / "README.md").read_text() == (
        "---\nconfigs:\n- config_name: main\n  data_files:\n  - split: train\n    path: main/train.jsonl\n"
        "  - split: test\n    path: main/test.jsonl\n---\n"
    )
    assert mirror.gap(mirror.leaves("gsm8k")[0], tmp_path / "mirror") is None


def test_alignment_probes_find_gsm8k_in_the_local_data_or_the_mirror(partial_mirror: Path, tmp_path: Path) -> None:
    tasks = write_overrides({"gsm8k": GSM8K_DIR}, tmp_path / "tasks", tmp_path / "local").include_path
    assert gsm8k_dir(WorkerConfig("hf", include_path=tasks)) == tmp_path / "local" / "openai" / "gsm8k" / "main"
    assert gsm8k_dir(WorkerConfig("hf", dataset_mirror=partial_mirror)) == partial_mirror / "openai" / "gsm8k" / "main"
    assert gsm8k_dir(WorkerConfig("hf", dataset_mirror=tmp_path)) is None


def test_a_worker_takes_local_data_or_a_mirror_not_both(tmp_path: Path) -> None:
    both = gate(
        "worker", "--server", "http://127.0.0.1:9", "--token", "t", "--backend", "hf",
        "--local-data", f"gsm8k={GSM8K_DIR}", "--dataset-mirror", str(tmp_path),
    )  # fmt: skip
    assert (both.returncode, both.stdout) == (2, "")
    assert both.stderr == (
        "error: Invalid value: give --local-data or --dataset-mirror, not both: put the local files into the mirror "
        "(see gate worker --help)\n"
    )
