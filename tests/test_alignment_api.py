"""Alignment runs through the API: submission, the worker's upload checked and judged on the server, reading back.

Reports are made by the real comparison code (metrics.compare) from side records built here, so every figure is
one the executor could have produced; the worker path with real side processes is in test_alignment_worker.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from gate.app import create_app
from gate.checks.alignment import metrics, recording, spec
from gate.checks.alignment.judge import Thresholds
from gate.checks.alignment.record import SideRecord
from gate.settings import Settings
from tests.conftest import make_token

MODEL = "/models/tiny"
TOP_K = 20
TEXTS = {"a": [5, 6, 7, 8, 9, 10], "b": [11, 12, 13, 14]}
LAX = "lax-alignment"


def _record(dtype: str, shift: float) -> SideRecord:
    """A side whose top-k log-probabilities are the same ladder everywhere, the last ten `shift` nats higher."""
    texts = []
    for name, ids in TEXTS.items():
        positions = []
        for token in ids[1:]:
            ladder = [[float(100 + t), -1.0 - t] for t in range(TOP_K)]
            for entry in ladder[10:]:  # the tail moves: the top tokens and the perplexity stay
                entry[1] += shift
            ladder[0][0] = float(token)  # the actual next token is the most likely: a perplexity of e
            positions.append({"token": token, "logprob": -1.0, "top": ladder})
        texts.append({"name": name, "kind": "text", "token_ids": ids, "positions": positions})
    return {
        "backend": "hf",
        "model": MODEL,
        "dtype": dtype,
        "device": "cpu",
        "top_k": TOP_K,
        "full_logits": False,
        "tokenizer_fingerprint": "f" * 64,
        "texts": texts,
    }


def report_for(checked: dict[str, Any], shift: float = 0.0) -> dict[str, Any]:
    """An executor-shaped report of one float32 comparison; a nonzero shift lowers the cosine a little."""
    name = "candidate float32 vs reference float32"
    comparison = metrics.compare(_record("float32", shift), _record("float32", 0.0))
    tokens = {str(t): f"<{t}>" for ids in TEXTS.values() for t in ids} | {str(100 + t): "x" for t in range(2)}
    return {
        "spec": checked,
        "probe": [{"name": n, "kind": "text", "text": n, "token_ids": ids} for n, ids in TEXTS.items()],
        "sides": [],
        "comparisons": {name: comparison},
        "tokens": tokens,
        "tokenizer_fingerprint": "f" * 64,
        "outcome": "pass",  # what a worker says; the server judges for itself
        "reasons": [],
    }


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """An app whose baselines include one with lax alignment thresholds."""
    shipped = Settings().baselines_dir
    for path in shipped.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    lax = {
        "name": LAX,
        "model": MODEL,
        "source": "test",
        "scores": [{"benchmark": "GSM8K", "task": "gsm8k", "metric": "exact_match,strict-match", "score": 0.5}],
        "checks": {"alignment": {"cosine": 0.99}},
    }
    (tmp_path / f"{LAX}.yaml").write_text(yaml.safe_dump(lax))
    settings = Settings(database_url=database_url, lease_s=30, reaper_interval_s=60, baselines_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        headers = {
            s: {"Authorization": f"Bearer {make_token(database_url, s, s)}"}
            for s in ("read", "submit", "worker", "admin")
        }
        yield client, headers


def submit_and_claim(client: TestClient, headers: dict, **extra: Any) -> tuple[dict, dict]:
    body = {"candidate": {"model": MODEL}, "probes": {"set": "texts", "texts": ["a b c", "d e"]}, **extra}
    created = client.post("/api/v1/alignment/runs", json=body, headers=headers["submit"])
    assert created.status_code == 201, created.text
    worker = {"name": "w", "backend": "hf", "wait_s": 0, "labels": extra.get("labels", [])}
    claimed = client.post("/api/v1/workers/claim", json=worker, headers=headers["worker"])
    assert claimed.status_code == 200, claimed.text
    return created.json(), claimed.json()


def upload(client: TestClient, headers: dict, run_id: int, lease: str, report: dict) -> Any:
    body = {"lease": lease, "report": report, "environment": {"python": "3.11"}}
    return client.post(f"/api/v1/workers/runs/{run_id}/alignment", json=body, headers=headers["worker"])


def test_a_probe_is_queued_claimed_judged_stored_and_served(api) -> None:
    client, headers = api
    run, claimed = submit_and_claim(client, headers, labels=["npu"], priority=5)
    assert run["kind"] == "alignment" and run["tasks"] == [] and run["model"] == MODEL and run["backend"] == "hf"
    assert run["status"] == "queued" and run["labels"] == ["npu"] and run["priority"] == 5
    assert run["options"] == spec.check({"candidate": {"model": MODEL}, "probes": claimed["options"]["probes"]})
    assert claimed["run_id"] == run["id"] and claimed["kind"] == "alignment" and claimed["options"] == run["options"]

    done = upload(client, headers, run["id"], claimed["lease"], report_for(run["options"]))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "succeeded" and done.json()["verdict"] == "pass"
    again = upload(client, headers, run["id"], claimed["lease"], report_for(run["options"]))
    assert again.status_code == 200 and again.json()["verdict"] == "pass"  # a replay records nothing twice
    other = upload(client, headers, run["id"], claimed["lease"], report_for(run["options"], shift=0.5))
    assert other.status_code == 409
    assert other.json()["detail"] == f"run {run['id']} has a different result recorded already"

    detail = client.get(f"/api/v1/runs/{run['id']}", headers=headers["read"]).json()
    assert detail["verdict"] == "pass" and detail["verdict_reason"] is None and detail["files"] == ["alignment.json"]
    assert detail["environment"] == {"python": "3.11"}
    served = client.get(f"/api/v1/runs/{run['id']}/alignment", headers=headers["read"]).json()
    assert served["outcome"] == "pass" and served["reasons"] == ["1 comparison(s) within the fixed thresholds."]
    assert served["thresholds"]["cosine"] == 0.9999 and served["three_way"] is None and served["noise_floor"] is None
    comparison = served["comparisons"]["candidate float32 vs reference float32"]
    assert comparison["overall"]["cosine_min"] == pytest.approx(1.0) and comparison["overall"]["positions"] == 8
    assert [t["name"] for t in comparison["texts"]] == ["a", "b"] and "positions" not in comparison["texts"][0]
    positions = client.get(
        f"/api/v1/runs/{run['id']}/alignment/positions",
        params={"comparison": "candidate float32 vs reference float32", "text": "b"},
        headers=headers["read"],
    ).json()
    assert positions["tokens"] == ["<11>", "<12>", "<13>", "<14>"]
    assert [p["token"] for p in positions["positions"]] == [12, 13, 14]
    missing = client.get(
        f"/api/v1/runs/{run['id']}/alignment/positions",
        params={"comparison": "nope", "text": "b"},
        headers=headers["read"],
    )
    assert missing.status_code == 404 and missing.json()["detail"] == f"run {run['id']} has no comparison 'nope'"
    artifact = client.get(f"/api/v1/runs/{run['id']}/files/alignment.json", headers=headers["read"])
    assert artifact.status_code == 200 and artifact.json()["outcome"] == "pass"
    texts = artifact.json()["comparisons"]["candidate float32 vs reference float32"]["texts"]
    assert [len(t["positions"]) for t in texts] == [5, 3]  # the whole report, positions included

    exported = client.get("/api/v1/runs/export", params={"format": "json"}, headers=headers["read"]).json()
    figures = {(row["task"], row["metric"]): row for row in exported if row["run_id"] == run["id"]}
    cosine = figures[("candidate float32 vs reference float32", "cosine_min")]
    assert cosine["kind"] == "alignment" and cosine["value"] == pytest.approx(1.0) and cosine["n_samples"] == 8
    assert figures[("candidate float32 vs reference float32", "ppl_rel_diff_max")]["value"] == 0.0
    assert len(figures) == len(recording.SCORED)  # every overall figure, once

    promoted = client.post("/api/v1/baselines", json={"from_run": run["id"], "name": "x"}, headers=headers["admin"])
    assert promoted.status_code == 422
    assert promoted.json()["detail"] == f"run {run['id']} (alignment) is judged within itself, not against a baseline"


def test_the_server_judges_and_a_baselines_thresholds_change_the_verdict(api) -> None:
    client, headers = api
    shifted_figures = metrics.compare(_record("float32", 2.0), _record("float32", 0.0))["overall"]
    assert 0.99 < shifted_figures["cosine_mean"] < 0.9999  # fails the card's default, passes the lax baseline

    run, claimed = submit_and_claim(client, headers)
    done = upload(client, headers, run["id"], claimed["lease"], report_for(run["options"], shift=2.0))
    assert done.json()["verdict"] == "fail"  # although the worker's report says pass
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=headers["read"]).json()
    assert detail["verdict_reason"].startswith("candidate float32 vs reference float32: the mean logit cosine is ")

    lax_run, lax_claim = submit_and_claim(client, headers, baseline=LAX)
    assert lax_run["baseline"] == LAX
    done = upload(client, headers, lax_run["id"], lax_claim["lease"], report_for(lax_run["options"], shift=2.0))
    assert done.json()["verdict"] == "pass"
    served = client.get(f"/api/v1/runs/{lax_run['id']}/alignment", headers=headers["read"]).json()
    assert served["thresholds"] == {**Thresholds().as_dict(), "cosine": 0.99}


def _nan_cosine(report: dict) -> None:
    report["comparisons"]["candidate float32 vs reference float32"]["overall"]["cosine_mean"] = math.nan


def _cosine_above_one(report: dict) -> None:
    report["comparisons"]["candidate float32 vs reference float32"]["texts"][1]["positions"][0]["cosine"] = 1.5


def _negative_kl(report: dict) -> None:
    report["comparisons"]["candidate float32 vs reference float32"]["overall"]["kl_mean"] = -0.5


def _another_spec(report: dict) -> None:
    report["spec"]["top_k"] = 50


def _passes_without_comparisons(report: dict) -> None:
    report["comparisons"] = {}


BAD_REPORTS = {
    "nan": (
        _nan_cosine,
        "comparisons['candidate float32 vs reference float32'].overall.cosine_mean must be a finite number, got nan.",
    ),
    "cosine 1.5": (
        _cosine_above_one,
        "comparisons['candidate float32 vs reference float32'].texts[1].positions[0].cosine is 1.5, outside [-1, 1].",
    ),
    "negative kl": (
        _negative_kl,
        "comparisons['candidate float32 vs reference float32'].overall.kl_mean is -0.5, outside [0, inf].",
    ),
    "another spec": (_another_spec, "the report is for another probe spec than the run's."),
    "no comparisons": (
        _passes_without_comparisons,
        "a report without comparisons must say why the sides are not comparable.",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REPORTS))
def test_an_impossible_report_is_refused_and_nothing_is_stored(api, case: str) -> None:
    client, headers = api
    run, claimed = submit_and_claim(client, headers)
    spoil, sentence = BAD_REPORTS[case]
    report = report_for(run["options"])
    spoil(report)
    refused = client.post(
        f"/api/v1/workers/runs/{run['id']}/alignment",
        content=_json_with_nan({"lease": claimed["lease"], "report": report}),
        headers={**headers["worker"], "Content-Type": "application/json"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == sentence
    _nothing_stored(client, headers, run["id"])


def test_a_wrong_lease_is_refused_before_the_report_is_read(api) -> None:
    client, headers = api
    run, _claimed = submit_and_claim(client, headers)
    refused = upload(client, headers, run["id"], "not-the-lease", {"anything": "at all"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"run {run['id']}: this lease is stale (the run was handed to another attempt)"
    _nothing_stored(client, headers, run["id"])


def _json_with_nan(body: dict) -> bytes:
    import json

    return json.dumps(body).encode()  # Python writes NaN as the bare word NaN, which a careless server would take


def _nothing_stored(client: TestClient, headers: dict, run_id: int) -> None:
    detail = client.get(f"/api/v1/runs/{run_id}", headers=headers["read"]).json()
    assert detail["status"] == "running" and detail["verdict"] is None and detail["files"] == []
    absent = client.get(f"/api/v1/runs/{run_id}/alignment", headers=headers["read"])
    assert absent.status_code == 404
    assert absent.json()["detail"] == f"run {run_id} has no alignment report (an alignment run, running)"


SUBMISSIONS = {
    "no candidate": ({"probes": {"set": "card"}, "candidate": {}}, 422, "candidate.model must name a model."),
    "bad dtype": (
        {"candidate": {"model": MODEL, "dtype": "int4"}},
        422,
        "candidate.dtype must be one of float32, bfloat16, float16, not 'int4'.",
    ),
    "bad probes": (
        {"candidate": {"model": MODEL}, "probes": {"set": "wiki"}},
        422,
        "probes.set must be card, gsm8k or texts, not 'wiki'.",
    ),
    "top_k": ({"candidate": {"model": MODEL}, "top_k": 5}, 422, "top_k must be an integer from 20 to 1000, got 5."),
    "remote code": (
        {"candidate": {"model": MODEL, "engine_args": {"trust_remote_code": True}}},
        403,
        "trust_remote_code needs an admin token",
    ),
    "unknown baseline": ({"candidate": {"model": MODEL}, "baseline": "nope"}, 404, "unknown baseline 'nope'"),
}


@pytest.mark.parametrize("case", sorted(SUBMISSIONS))
def test_a_bad_submission_is_one_sentence(api, case: str) -> None:
    client, headers = api
    body, code, sentence = SUBMISSIONS[case]
    refused = client.post("/api/v1/alignment/runs", json=body, headers=headers["submit"])
    assert refused.status_code == code, refused.text
    assert refused.json()["detail"] == sentence


def test_an_idempotency_key_returns_the_first_run(api) -> None:
    client, headers = api
    body = {"candidate": {"model": MODEL}, "idempotency_key": "probe-1"}
    first = client.post("/api/v1/alignment/runs", json=body, headers=headers["submit"])
    second = client.post("/api/v1/alignment/runs", json=body, headers=headers["submit"])
    assert (first.status_code, second.status_code) == (201, 200) and first.json()["id"] == second.json()["id"]
