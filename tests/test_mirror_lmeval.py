"""Real lm-eval runs through a dataset mirror: MMLU's group of 57 subtasks (loglikelihood) and MATH as the baseline
names it (minerva_math, generation) on the tiny random Qwen3, and a `gate worker --dataset-mirror` that runs GSM8K
from the shared copy laid out as a mirror entry and refuses a task the mirror lacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gate.baselines.files import read_dir
from gate.checks.accuracy import mirror
from gate.settings import Settings
from gate.worker.tiny_model import build
from tests.conftest import GSM8K_DIR
from tests.lmeval_runs import run_lm_eval
from tests.mirrors import MATH_CONFIGS, math_rows, mmlu_rows, write_gsm8k, write_math, write_mmlu
from tests.processes import Api, server, worker_process
from tests.test_import import upload
from tests.test_worker_e2e import smoke_run, stop

pytestmark = pytest.mark.lmeval


def baseline_metric(task: str) -> str:
    (baseline,) = read_dir(Settings().baselines_dir)
    return next(entry.metric for entry in baseline.references if entry.task == task)


def samples_of(samples: list[Path], task: str) -> list[dict]:
    (path,) = [p for p in samples if p.name.startswith(f"samples_{task}_2")]
    return [json.loads(line) for line in path.read_text().splitlines()]


SUBJECTS = [str(leaf.config) for leaf in mirror.leaves("mmlu")]
MmluRun = tuple[Path, list[Path]]


@pytest.fixture(scope="module")
def mmlu_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> tuple[MmluRun, MmluRun]:
    """MMLU 5-shot from the mirror (2 questions per subject) by two tiny Qwen3s with different random weights."""
    root = tmp_path_factory.mktemp("mmlu")
    write_mmlu(root / "mirror", SUBJECTS, test_rows=2)
    tasks = mirror.prepare(["mmlu"], root / "mirror", root / "tasks")
    other = build(root / "other-model", GSM8K_DIR, seed=1)
    runs = []
    for name, model in (("a", tiny_model), ("b", other)):
        args = ["--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--device", "cpu"]
        args += ["--include_path", str(tasks.include_path), "--tasks", "mmlu", "--num_fewshot", "5"]
        args += ["--batch_size", "16"]
        runs.append(run_lm_eval(args, root / name, HF_DATASETS_CACHE=str(root / tasks.content)))
    return runs[0], runs[1]


def test_mmlu_runs_from_the_mirror_subtask_by_subtask(mmlu_runs: tuple[MmluRun, MmluRun]) -> None:
    (results_path, samples), _ = mmlu_runs
    subjects = SUBJECTS
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


def test_mmlu_is_paired_with_a_reference_run_per_subtask(
    client: TestClient, auth: dict, mmlu_runs: tuple[MmluRun, MmluRun]
) -> None:
    """A promoted MMLU reference run gates the group on the per-question differences over all 57 subtasks' questions,
    and the comparison page pairs the group and each subtask on its own."""
    (ref_results, ref_samples), (cand_results, cand_samples) = mmlu_runs
    reference = upload(client, auth["submit"], ref_results, ref_samples, model="acme/port-gpu", backend="vllm")
    assert reference.status_code == 201, reference.text
    promoted = client.post(
        "/api/v1/baselines", json={"from_run": reference.json()["id"], "name": "mmlu-ref"}, headers=auth["admin"]
    )
    assert promoted.status_code == 201, promoted.text
    candidate = upload(client, auth["submit"], cand_results, cand_samples, model="acme/port-npu", baseline="mmlu-ref")
    assert candidate.status_code == 201, candidate.text

    # the expected pairing, read straight from lm-eval's samples files: (subject, doc_id) -> right
    def right(paths: list[Path]) -> dict[tuple[str, int], bool]:
        return {
            (subject, s["doc_id"]): s["acc"] == 1.0
            for subject in SUBJECTS
            for s in samples_of(paths, f"mmlu_{subject}")
        }

    a, b = right(ref_samples), right(cand_samples)
    assert len(a) == len(b) == 2 * len(SUBJECTS)
    regressions = {key for key in a if a[key] and not b[key]}
    improvements = {key for key in a if b[key] and not a[key]}
    assert regressions and improvements  # two random models disagree somewhere: the test can see a mix-up
    # the reference run's every score is an entry of the promoted baseline: the group, its four categories and
    # each subject, each gated on its own documents' differences
    verdicts = {v["task"]: v for v in candidate.json()["verdicts"]}
    assert verdicts.keys() == {"mmlu", "mmlu_humanities", "mmlu_other", "mmlu_social_sciences", "mmlu_stem"} | {
        f"mmlu_{subject}" for subject in SUBJECTS
    }
    paired = verdicts["mmlu"]["details"]["paired"]
    assert (paired["n"], paired["regressions"], paired["improvements"]) == (
        2 * len(SUBJECTS),
        len(regressions),
        len(improvements),
    )
    for subject in SUBJECTS:
        paired = verdicts[f"mmlu_{subject}"]["details"]["paired"]
        lost = sum(1 for key in regressions if key[0] == subject)
        gained = sum(1 for key in improvements if key[0] == subject)
        assert (paired["n"], paired["regressions"], paired["improvements"]) == (2, lost, gained), subject

    page = client.get(
        "/compare", params={"a": reference.json()["id"], "b": candidate.json()["id"]}, headers=auth["read"]
    ).text
    group = len(regressions), len(improvements)
    assert f"n={2 * len(SUBJECTS)}: {group[0]} right→wrong, {group[1]} wrong→right" in page
    for subject in ("anatomy", "world_religions"):
        lost = sum(1 for key in regressions if key[0] == subject)
        gained = sum(1 for key in improvements if key[0] == subject)
        assert f"<td>mmlu_{subject}</td><td>acc,none</td>" in page
        row = page.split(f"<td>mmlu_{subject}</td><td>acc,none</td>", 1)[1].split("</tr>", 1)[0]
        assert f"n=2: {lost} right→wrong, {gained} wrong→right" in row
    flipped = re.findall(r"<tr><td>mmlu_(\w+)</td><td>(\d+)</td>", page)
    assert sorted((subject, int(doc)) for subject, doc in flipped) == sorted(regressions | improvements)


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
