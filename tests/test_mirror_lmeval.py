"""Real lm-eval runs through a dataset mirror: MMLU's group of 57 subtasks (loglikelihood) and MATH as the baseline
names it (minerva_math, generation) on the tiny random Qwen3, and a `gate worker --dataset-mirror` that runs GSM8K
from the shared copy laid out as a mirror entry and refuses a task the mirror lacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.baselines.files import read_dir
from gate.checks.accuracy import mirror
from gate.settings import Settings
from tests.lmeval_runs import run_lm_eval
from tests.mirrors import MATH_CONFIGS, math_rows, mmlu_rows, write_gsm8k, write_math, write_mmlu
from tests.processes import Api, server, worker_process
from tests.test_worker_e2e import smoke_run, stop

pytestmark = pytest.mark.lmeval


def baseline_metric(task: str) -> str:
    (baseline,) = read_dir(Settings().baselines_dir)
    return next(entry.metric for entry in baseline.references if entry.task == task)


def samples_of(samples: list[Path], task: str) -> list[dict]:
    (path,) = [p for p in samples if p.name.startswith(f"samples_{task}_2")]
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_mmlu_runs_from_the_mirror_subtask_by_subtask(tmp_path: Path, tiny_model: Path) -> None:
    subjects = [str(leaf.config) for leaf in mirror.leaves("mmlu")]
    write_mmlu(tmp_path / "mirror", subjects, test_rows=2)
    tasks = mirror.prepare(["mmlu"], tmp_path / "mirror", tmp_path / "tasks")
    args = ["--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32", "--device", "cpu"]
    args += ["--include_path", str(tasks.include_path), "--tasks", "mmlu", "--num_fewshot", "5", "--batch_size", "16"]
    results_path, samples = run_lm_eval(args, tmp_path / "out", HF_DATASETS_CACHE=str(tmp_path / tasks.content))
    results = json.loads(results_path.read_text())
    assert baseline_metric("mmlu") == "acc,none" and "acc,none" in results["results"]["mmlu"]
    assert results["n-samples"]["mmlu_anatomy"] == {"original": 2, "effective": 2}
    for subject in subjects:
        assert "acc,none" in results["results"][f"mmlu_{subject}"]
        assert [s["doc"] for s in samples_of(samples, f"mmlu_{subject}")] == mmlu_rows(subject, "test", 2)
    prompt = samples_of(samples, "mmlu_anatomy")[0]["arguments"]["gen_args_0"]["arg_0"]
    shots = mmlu_rows("anatomy", "dev", 5)  # upstream's few-shot: the first five rows of the dev split
    assert prompt.startswith("The following are multiple choice questions (with answers) about anatomy.\n\n")
    assert all(shot["question"] in prompt for shot in shots)


def test_minerva_math_runs_from_the_mirror(tmp_path: Path, tiny_model: Path) -> None:
    write_math(tmp_path / "mirror")
    tasks = mirror.prepare(["minerva_math"], tmp_path / "mirror", tmp_path / "tasks")
    args = ["--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32", "--device", "cpu"]
    args += ["--include_path", str(tasks.include_path), "--tasks", "minerva_math", "--num_fewshot", "4"]
    args += ["--limit", "2", "--batch_size", "8", "--gen_kwargs", "max_gen_toks=8"]
    results_path, samples = run_lm_eval(args, tmp_path / "out", HF_DATASETS_CACHE=str(tmp_path / tasks.content))
    results = json.loads(results_path.read_text())
    assert baseline_metric("minerva_math") == "exact_match,none"
    assert "exact_match,none" in results["results"]["minerva_math"]
    for config, task in zip(MATH_CONFIGS, (leaf.task for leaf in mirror.leaves("minerva_math")), strict=True):
        assert "exact_match,none" in results["results"][task]
        docs = [s["doc"] for s in samples_of(samples, task)]
        # process_docs keeps problem and solution and adds the boxed answer
        assert [(d["problem"], d["solution"]) for d in docs] == [
            (row["problem"], row["solution"]) for row in math_rows(config, "test", 2)
        ]
        assert [d["answer"] for d in docs] == ["1", "3"]


def test_a_worker_runs_from_its_mirror_and_refuses_what_it_lacks(tmp_path: Path, tiny_model: Path) -> None:
    root = tmp_path / "mirror"
    write_gsm8k(root)
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        api = Api(s)
        token = api.headers["worker"]["Authorization"].split()[1]
        worker = worker_process(s.url, token, tmp_path / "w1", data=("--dataset-mirror", str(root)))
        try:
            refused = api.wait(api.submit(**{**smoke_run(tiny_model), "tasks": ["minerva_math"]})["id"])
            ran = api.wait(api.submit(**smoke_run(tiny_model, limit=2, max_gen_toks=8))["id"])
        finally:
            stop(worker)
    math_dir = root / "EleutherAI" / "hendrycks_math"
    assert (refused["status"], refused["failure_kind"], refused["attempts"]) == ("failed", "user", 1)
    assert refused["failure_reason"] == (
        f"minerva_math cannot run from the dataset mirror {root}: 7 of its 7 tasks lack EleutherAI/hendrycks_math "
        "(configs algebra, counting_and_probability, geometry, intermediate_algebra, number_theory, prealgebra, "
        f"precalculus; splits train, test) at {math_dir}, as `hf download --repo-type dataset "
        f"EleutherAI/hendrycks_math --local-dir {math_dir}` writes it."
    )
    assert ran["status"] == "succeeded", ran
    assert {score["n_samples"] for score in ran["scores"]} == {2}
