"""Real lm-eval output of seven versions (0.4.2 to 0.4.13.dev0, and a 0.3 file) read and judged end to end.

Files and their sources: tests/fixtures/lmeval/README.md. Expected numbers are read off the files by hand against
baselines/qwen3-4b-thinking-2507.yaml (GSM8K 5-shot 0.703, MMLU 5-shot 0.723, +/-2 pp).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from gate.baselines.models import Baseline, BaselineScore
from gate.checks.accuracy import results
from gate.db import transaction
from gate.errors import InvalidInput
from gate.runs.models import Run
from tests.processes import Api, server

FIXTURES = Path(__file__).parent / "fixtures" / "lmeval"
BASELINE = "qwen3-4b-thinking-2507"
MMLU = FIXTURES / "v0.4.7-mmlu-0shot-llama-3.2-3b.json"
GSM8K_COT = FIXTURES / "v0.4.3-gsm8k_cot_llama-vllm.json"
NEGOTIATION = sorted((FIXTURES / "negotiationtom").glob("samples_*.jsonl"))
NEGOTIATION_RESULTS = next((FIXTURES / "negotiationtom").glob("results_*.json"))
NOT_GATED = (
    "baseline 'qwen3-4b-thinking-2507' has no entry for any task of this run ({}); "
    "it gates gsm8k, mmlu, minerva_math, humaneval"
)


def upload(client: TestClient, headers: dict, path: Path, samples: list[Path] = (), **form: str):
    files = [("results", (path.name, path.read_bytes(), "application/json"))]
    files += [("samples", (s.name, s.read_bytes(), "application/x-ndjson")) for s in samples]
    return client.post("/api/v1/runs/import", files=files, data={"baseline": BASELINE, **form}, headers=headers)


# file, top-level task, its n-shot and where it came from, documents, model, backend, lm-eval version
READS = [
    ("v0.4.2-wmdp-groups-openai-chat.json", "wmdp", 0, "subtasks", None, "gpt-3.5-turbo-0125",
     "openai-chat-completions", None),
    ("v0.4.3-gsm8k_cot_llama-vllm.json", "gsm8k_cot_llama", 5, "n-shot", 1319, "meta-llama/Meta-Llama-3-8B-Instruct",
     "vllm", None),
    ("v0.4.7-mmlu-0shot-llama-3.2-3b.json", "mmlu", 0, "subtasks", 14042, "meta-llama/Llama-3.2-3B", "hf", None),
    ("sae_steered_beta-mmlu_abstract_algebra.json", "mmlu_abstract_algebra", 0, "n-shot", 100,
     "/home/cs29824/matthew/lm-evaluation-harness/examples/dog_steer.csv", "sae_steered_beta", None),
    ("v0.4.8-truthfulqa_gen-gpt-neo-125m.json", "truthfulqa_gen", 0, "n-shot", 817, "EleutherAI/gpt-neo-125M", "hf",
     "0.4.8"),
    ("v0.4.9.2-nl2foam-perplexity-vllm.json", "nl2foam_perplexity_original", 0, "n-shot", 2849,
     "/scratch/hieu/nl2foam_sft_0/outputs/nl2foam_sft_0__8__1765350318", "vllm", "0.4.9.2"),
    ("v0.4.10.dev0-masakhaner-vllm.json", "masakhaner_luo_prompt_1", 5, "n-shot", 185, "google/gemma-2b", "vllm",
     "0.4.10.dev0"),
    ("negotiationtom/results_2026-07-08T16-04-34.219874.json", "negotiationtom", 0, "subtasks", 60, "Qwen/Qwen3-8B",
     "hf", "0.4.13.dev0"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "task", "shots", "shots_from", "docs", "model", "backend", "version"), READS)
def test_every_version_reads(
    name: str, task: str, shots: int, shots_from: str, docs: int | None, model: str, backend: str, version: str | None
) -> None:
    parsed = results.parse_results((FIXTURES / name).read_bytes())
    profile = parsed.profiles[task]
    assert [t for t, p in parsed.profiles.items() if not p["groups"]] == [task]
    assert (profile["num_fewshot"], profile["num_fewshot_from"], profile["n_effective"]) == (shots, shots_from, docs)
    assert (results.named_model(parsed), results.model_type(parsed)) == (model, backend)
    assert profile["lm_eval_version"] == version and profile["model"] == backend
    assert parsed.scores and all(s.metric.count(",") == 1 for s in parsed.scores)


def test_groups_take_their_counts_and_shots_from_their_subtasks() -> None:
    parsed = results.parse_results(MMLU.read_bytes())
    mmlu = parsed.profiles["mmlu"]
    assert "mmlu" not in json.loads(MMLU.read_text())["n-shot"]  # 0.4.4+ writes no n-shot for a group
    assert len(mmlu["subtasks"]) == 57 and "mmlu_anatomy" in mmlu["subtasks"] and "mmlu_stem" not in mmlu["subtasks"]
    assert (mmlu["n_original"], mmlu["n_effective"]) == (14042, 14042)
    assert parsed.score("mmlu", "acc,none") == results.TaskScore(
        "mmlu", "acc,none", 0.5410910126762569, 0.0039800408718345835, 14042
    )
    assert parsed.profiles["mmlu_anatomy"]["groups"] == ["mmlu_stem"]
    assert parsed.profiles["mmlu_stem"]["groups"] == ["mmlu"]

    old = results.parse_results((FIXTURES / "v0.4.2-wmdp-groups-openai-chat.json").read_bytes())
    assert old.profiles["wmdp"]["subtasks"] == ["wmdp_chem", "wmdp_bio", "wmdp_cyber"]
    assert old.profiles["wmdp"]["model_args"] == {"model": "gpt-3.5-turbo-0125"}  # written as a string

    negotiation = results.parse_results(NEGOTIATION_RESULTS.read_bytes())
    # acc is scored by two of the three subtasks: 40 documents; micro_f1 by the third alone
    assert negotiation.score("negotiationtom", "acc,none").n_samples == 40
    assert negotiation.score("negotiationtom", "micro_f1,none").n_samples == 20
    assert negotiation.profiles["negotiationtom"]["model_args"]["enable_thinking"] is False


def _mmlu_variant(tmp_path: Path, shots: dict[str, int]) -> Path:
    """The real MMLU file with its subtasks' n-shot entries set as a 5-shot run writes them."""
    data = json.loads(MMLU.read_text())
    data["n-shot"] = {task: shots.get(task, 5) for task in data["n-shot"]}
    path = tmp_path / f"results_{len(shots)}.json"
    path.write_text(json.dumps(data))
    return path


def test_lm_eval_03_is_refused_in_one_sentence() -> None:
    with pytest.raises(InvalidInput) as refused:
        results.parse_results((FIXTURES / "v0.3-hendrycksTest-llama-7b.json").read_bytes())
    assert refused.value.message == (
        "results is an lm-eval 0.3 file (metrics such as 'acc' carry no filter): gate reads lm-eval 0.4 output, "
        "so re-run the evaluation with lm-eval 0.4 or later and upload its results_*.json"
    )


@pytest.mark.parametrize(
    ("name", "task", "metric", "value"),
    [
        ("v0.4.2-wmdp-groups-openai-chat.json", "wmdp", "exact_match,none", 1.0),
        ("v0.4.3-gsm8k_cot_llama-vllm.json", "gsm8k_cot_llama", "exact_match,strict-match", 0.7725549658832449),
        ("sae_steered_beta-mmlu_abstract_algebra.json", "mmlu_abstract_algebra", "acc,none", 0.34),
        ("v0.4.8-truthfulqa_gen-gpt-neo-125m.json", "truthfulqa_gen", "bleu_max,none", 13.82766815700744),
        ("v0.4.9.2-nl2foam-perplexity-vllm.json", "nl2foam_perplexity_original", "word_perplexity,none",
         2.606616650368937),
        ("v0.4.10.dev0-masakhaner-vllm.json", "masakhaner_luo_prompt_1", "f1,flexible-extract", 0.0656270305392884),
    ],
)  # fmt: skip
def test_tasks_the_baseline_lacks_are_stored_and_not_gated(
    client: TestClient, auth: dict, name: str, task: str, metric: str, value: float
) -> None:
    response = upload(client, auth["submit"], FIXTURES / name)
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "succeeded" and run["verdict"] == "not_comparable"
    assert run["verdict_reason"] == NOT_GATED.format(task)
    assert (run["gated_tasks"], run["not_gated_tasks"], run["verdicts"]) == ([], [task], [])
    assert next(s["value"] for s in run["scores"] if s["task"] == task and s["metric"] == metric) == value
    page = client.get(f"/runs/{run['id']}", headers=auth["read"]).text
    assert "Not gated (the baseline has no entry" in page and NOT_GATED.format(task).replace("'", "&#39;") in page


def test_mmlu_group_is_gated_on_its_subtasks_n_shot(client: TestClient, auth: dict, tmp_path: Path) -> None:
    zero_shot = upload(client, auth["submit"], MMLU).json()
    (verdict,) = zero_shot["verdicts"]
    assert zero_shot["verdict"] == "not_comparable" and zero_shot["gated_tasks"] == ["mmlu"]
    assert zero_shot["not_gated_tasks"] == [] and zero_shot["verdict_reason"] is None
    assert verdict["details"]["reasons"] == ["num_fewshot differs: run has 0, baseline has 5"]
    assert verdict["delta_pp"] == pytest.approx(-18.190898732374, abs=1e-9)  # 0.54109 - 0.723
    assert zero_shot["eval_profile"]["mmlu"]["num_fewshot_from"] == "subtasks"

    five_shot = upload(client, auth["submit"], _mmlu_variant(tmp_path, {})).json()
    assert five_shot["verdict"] == "fail" and five_shot["verdicts"][0]["details"]["reasons"] == []
    assert five_shot["verdicts"][0]["details"]["candidate_stderr_pp"] == pytest.approx(0.39800408718345835)

    mixed = upload(client, auth["submit"], _mmlu_variant(tmp_path, {"mmlu_anatomy": 0})).json()
    assert mixed["verdict"] == "not_comparable"
    assert mixed["verdicts"][0]["details"]["reasons"] == [
        "the run's num_fewshot is unknown (its subtasks disagree (1 at 0-shot, 56 at 5-shot)); the baseline has 5"
    ]


def test_group_samples_pair_over_their_subtasks(client: TestClient, auth: dict) -> None:
    reference = upload(client, auth["submit"], NEGOTIATION_RESULTS, NEGOTIATION).json()
    assert reference["status"] == "succeeded", reference
    assert sorted(reference["files"]) == sorted(
        ["results.json"] + [f"samples_negotiationtom_{t}.jsonl" for t in ("belief", "desire", "intention")]
    )
    stored = client.get(f"/api/v1/runs/{reference['id']}/samples", params={"limit": 100}, headers=auth["read"]).json()
    assert len(stored) == 60 and {s["task"] for s in stored} == {
        "negotiationtom_belief",
        "negotiationtom_desire",
        "negotiationtom_intention",
    }
    # promote() refuses this run (lm-eval ran it with limit=20), so its reference baseline is written directly
    with transaction(client.app.state.sessions, write=True) as session:
        run = session.get(Run, reference["id"])
        session.add(
            Baseline(
                name="negotiation-ref",
                model=run.model,
                source="test",
                kind="reference_run",
                from_run_id=run.id,
                scores=[
                    BaselineScore(
                        benchmark="NegotiationToM",
                        task="negotiationtom",
                        metric="acc,none",
                        num_fewshot=0,
                        score=0.525,
                        tolerance_pp=2.0,
                        two_sided=True,
                        eval_profile=run.eval_profile["negotiationtom"],
                    )
                ],
            )
        )
    candidate = upload(client, auth["submit"], NEGOTIATION_RESULTS, NEGOTIATION, baseline="negotiation-ref").json()
    paired = candidate["verdicts"][0]["details"]["paired"]
    # acc is per document of the belief and desire subtasks: 20 + 20 shared documents, none flipped
    assert (paired["n"], paired["regressions"], paired["improvements"]) == (40, 0, 0)
    assert candidate["verdicts"][0]["details"]["reasons"] == [
        "the run used limit=20: a smoke run on part of the test set"
    ]


def test_imported_names_are_provenance(client: TestClient, auth: dict) -> None:
    windows = upload(client, auth["submit"], GSM8K_COT, model="C:\\models\\qwen", backend="hf-causal-experimental")
    assert windows.status_code == 201, windows.text
    assert (windows.json()["model"], windows.json()["backend"]) == ("C:\\models\\qwen", "hf-causal-experimental")
    for form, text in (
        ({"model": "qwen\x1b[31m"}, "model contains control characters"),
        ({"model": " "}, "model is empty"),
        ({"backend": "x" * 32 + "y"}, "backend"),
    ):
        response = upload(client, auth["submit"], GSM8K_COT, **form)
        assert response.status_code == 422 and text in response.json()["detail"], response.text
    refused = upload(client, auth["submit"], FIXTURES / "v0.3-hendrycksTest-llama-7b.json")
    assert refused.status_code == 422 and "lm-eval 0.3 file" in refused.json()["detail"]
    assert len(client.get("/api/v1/runs", headers=auth["read"]).json()["runs"]) == 1


def test_gate_import_reports_a_run_with_nothing_gated(tmp_path: Path) -> None:
    with server(f"sqlite:///{tmp_path / 'gate.db'}", tmp_path) as s:
        token = Api(s).headers["submit"]["Authorization"].split()[1]
        env = {"GATE_TOKEN": token, "GATE_SERVER": s.url, "PATH": "/usr/bin:/bin"}
        junit = tmp_path / "gate.xml"
        done = subprocess.run(
            [sys.executable, "-m", "gate.cli", "import", str(GSM8K_COT), "--baseline", BASELINE, "--junit", str(junit)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert f"not comparable: {NOT_GATED.format('gsm8k_cot_llama')}" in done.stdout
    assert "not gated (the baseline has no entry): gsm8k_cot_llama" in done.stdout
    (case,) = ElementTree.parse(junit).getroot().iter("testcase")
    assert case.find("skipped").get("message") == f"not comparable: {NOT_GATED.format('gsm8k_cot_llama')}"


@pytest.fixture(scope="session")
def halves_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A group of two lm-eval tasks, each upstream's gsm8k on 30 local test questions, as mmlu is of its subjects."""
    import yaml

    from gate.checks.accuracy.datasets import lm_eval_tasks_dir
    from tests.conftest import GSM8K_DIR

    out = tmp_path_factory.mktemp("halves")
    questions = (GSM8K_DIR / "test.jsonl").read_text().splitlines()
    for name, part in (("first", questions[:30]), ("second", questions[30:60])):
        (out / f"{name}.jsonl").write_text("\n".join(part) + "\n")
        task = {
            "include": str(lm_eval_tasks_dir() / "gsm8k" / "gsm8k.yaml"),
            "task": f"gsm8k_{name}",
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {
                "data_files": {"train": str(GSM8K_DIR / "train.jsonl"), "test": str(out / f"{name}.jsonl")}
            },
        }
        (out / f"gsm8k_{name}.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    group = {
        "group": "gsm8k_halves",
        "task": ["gsm8k_first", "gsm8k_second"],
        "aggregate_metric_list": [
            {"metric": "exact_match", "aggregation": "mean", "weight_by_size": True, "filter_list": "strict-match"}
        ],
        "metadata": {"version": 1.0},
    }
    (out / "_gsm8k_halves.yaml").write_text(yaml.safe_dump(group, sort_keys=False))
    return out


def _halves_run(correct: int, tasks: Path, tiny_model: Path, out: Path) -> tuple[Path, list[Path]]:
    from tests.conftest import GSM8K_DIR
    from tests.lmeval_runs import gold_server, run_lm_eval

    with gold_server(GSM8K_DIR, correct) as gold:
        args = [
            "--model",
            "local-completions",
            "--model_args",
            f"model=gold-{correct},base_url={gold.url},tokenizer={tiny_model},tokenizer_backend=huggingface,"
            "num_concurrent=4,max_retries=1,tokenized_requests=False",
            "--include_path",
            str(tasks),
            "--tasks",
            "gsm8k_halves",
            "--num_fewshot",
            "5",
        ]
        return run_lm_eval(args, out)


@pytest.mark.lmeval
def test_a_group_pairs_with_its_promoted_reference_over_subtask_samples(
    client: TestClient, auth: dict, halves_tasks: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """Real lm-eval runs of a group (45 and then 40 of its 60 questions right), per-subtask samples files."""
    reference_files = _halves_run(45, halves_tasks, tiny_model, tmp_path / "ref")
    candidate_files = _halves_run(40, halves_tasks, tiny_model, tmp_path / "cand")
    assert sorted(p.name.split("_2")[0] for p in reference_files[1]) == ["samples_gsm8k_first", "samples_gsm8k_second"]

    reference = upload(client, auth["submit"], *reference_files).json()
    assert reference["eval_profile"]["gsm8k_halves"]["num_fewshot"] == 5
    assert reference["eval_profile"]["gsm8k_halves"]["num_fewshot_from"] in ("subtasks", "n-shot")
    promoted = client.post(
        "/api/v1/baselines", json={"from_run": reference["id"], "name": "halves-ref"}, headers=auth["admin"]
    )
    assert promoted.status_code == 201, promoted.text

    candidate = upload(client, auth["submit"], *candidate_files, baseline="halves-ref").json()
    verdicts = {v["task"]: v for v in candidate["verdicts"]}
    group = verdicts["gsm8k_halves"]
    assert group["delta_pp"] == pytest.approx((40 - 45) / 60 * 100)
    paired = group["details"]["paired"]
    assert (paired["n"], paired["regressions"], paired["improvements"]) == (60, 5, 0)
    assert group["outcome"] == "fail" and candidate["verdict"] == "fail"
    assert verdicts["gsm8k_first"]["details"]["paired"]["n"] == 30 and verdicts["gsm8k_first"]["outcome"] == "pass"
