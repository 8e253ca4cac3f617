"""Importing real lm-eval outputs: the verdict, the checks on the files, promotion and the paired test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

BASELINE = "qwen3-4b-thinking-2507"


def upload(client: TestClient, headers: dict, results: Path, samples: list[Path], **form: str):
    files = [("results", (results.name, results.read_bytes(), "application/json"))]
    files += [("samples", (s.name, s.read_bytes(), "application/x-ndjson")) for s in samples]
    return client.post("/api/v1/runs/import", files=files, data=form, headers=headers)


def state(client: TestClient, auth: dict) -> list:
    return client.get("/api/v1/runs", headers=auth["read"]).json()["runs"]


@pytest.mark.lmeval
def test_full_run_within_two_points_passes(client: TestClient, auth: dict, gold_run_927) -> None:
    results, samples = gold_run_927
    response = upload(client, auth["submit"], results, samples, model="acme/port-npu", baseline=BASELINE)
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "succeeded" and run["verdict"] == "pass"
    (verdict,) = run["verdicts"]
    assert verdict["task"] == "gsm8k" and verdict["outcome"] == "pass"
    assert verdict["delta_pp"] == pytest.approx((927 / 1319 - 0.703) * 100)
    details = verdict["details"]
    assert details["candidate_stderr_pp"] == pytest.approx(1.2589, abs=1e-3)
    assert details["delta_ci95_pp"][0] < 0 < details["delta_ci95_pp"][1]
    assert any("protocol offsets" in n for n in details["notes"])
    strict = next(s for s in run["scores"] if s["metric"] == "exact_match,strict-match")
    assert strict["n_samples"] == 1319
    assert run["eval_profile"]["gsm8k"]["num_fewshot"] == 5 and run["eval_profile"]["gsm8k"]["limit"] is None
    wrong = client.get(
        f"/api/v1/runs/{run['id']}/samples", params={"wrong": "true", "limit": 2000}, headers=auth["read"]
    ).json()
    assert len([s for s in wrong if s["filter"] == "strict-match"]) == 1319 - 927
    raw = client.get(f"/api/v1/runs/{run['id']}/files/results.json", headers=auth["read"])
    assert raw.content == results.read_bytes()


@pytest.mark.lmeval
def test_full_run_three_points_down_fails_and_pairs_with_a_reference(
    client: TestClient, auth: dict, gold_run_927, gold_run_880
) -> None:
    reference = upload(
        client, auth["submit"], *gold_run_927, model="acme/port-gpu", backend="vllm", baseline=BASELINE
    ).json()
    promoted = client.post(
        "/api/v1/baselines", json={"from_run": reference["id"], "name": "port-gpu-bf16"}, headers=auth["admin"]
    )
    assert promoted.status_code == 201, promoted.text
    assert promoted.json()["scores"][0]["protocol"] == "recorded"
    assert promoted.json()["kind"] == "reference_run"

    candidate = upload(client, auth["submit"], *gold_run_880, model="acme/port-npu", baseline="port-gpu-bf16").json()
    assert candidate["verdict"] == "fail"
    # the answer to an import is what was written: a read of the run gives the same, scores, verdict and files
    assert client.get(candidate["url"], headers=auth["read"]).json() == candidate
    assert candidate["files"] == ["results.json", "samples_gsm8k.jsonl"]
    details = candidate["verdicts"][0]["details"]
    assert candidate["verdicts"][0]["delta_pp"] == pytest.approx((880 - 927) / 1319 * 100)
    paired = details["paired"]
    assert (paired["n"], paired["regressions"], paired["improvements"]) == (1319, 47, 0)
    assert paired["p_value"] < 1e-10
    assert not any("protocol offsets" in n for n in details["notes"])

    history = client.get(
        "/api/v1/models/acme/port-npu/history", params={"task": "gsm8k", "baseline": BASELINE}, headers=auth["read"]
    ).json()
    assert [p["value"] for p in history["points"]] == [880 / 1319]
    assert history["baseline"] == 0.703 and history["metric"] == "exact_match,strict-match"
    assert (history["tolerance_pp"], history["two_sided"]) == (2.0, True)


@pytest.mark.lmeval
def test_smoke_run_is_not_comparable(client: TestClient, auth: dict, tiny_smoke_run) -> None:
    results, samples = tiny_smoke_run
    run = upload(client, auth["submit"], results, samples, baseline=BASELINE).json()
    assert run["verdict"] == "not_comparable"
    assert any("limit=8" in r for r in run["verdicts"][0]["details"]["reasons"])
    csv_export = client.get("/api/v1/runs/export", params={"format": "csv"}, headers=auth["read"])
    assert csv_export.text.splitlines()[0].startswith("run_id,kind,model,backend,status,verdict")
    assert len(csv_export.text.splitlines()) == 1 + 2  # strict-match and flexible-extract
    as_json = client.get("/api/v1/runs/export", params={"format": "json"}, headers=auth["read"]).json()
    assert {row["metric"] for row in as_json} == {"exact_match,strict-match", "exact_match,flexible-extract"}


@pytest.mark.lmeval
def test_refused_uploads_change_nothing(client: TestClient, auth: dict, tiny_smoke_run, tmp_path: Path) -> None:
    results, samples = tiny_smoke_run
    raw = json.loads(results.read_text())

    def variant(name: str, mutate) -> Path:
        data = json.loads(results.read_text())
        mutate(data)
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    no_metric = variant("no_metric.json", lambda d: d["results"]["gsm8k"].pop("exact_match,strict-match"))
    nan = tmp_path / "nan.json"
    nan.write_text(results.read_text().replace('"exact_match,strict-match": 0.0', '"exact_match,strict-match": NaN'))
    other_scores = variant("other.json", lambda d: d["results"]["gsm8k"].update({"exact_match,strict-match": 0.5}))
    fewer = tmp_path / f"samples_gsm8k_{samples[0].name.split('_', 2)[2]}"
    fewer.write_text("\n".join(samples[0].read_text().splitlines()[:-2]))
    not_json = tmp_path / "garbage.json"
    not_json.write_text("{oops")

    cases = [
        (upload(client, auth["submit"], no_metric, [], baseline=BASELINE), 422, "exact_match,strict-match"),
        (upload(client, auth["submit"], nan, [], baseline=BASELINE), 422, "finite"),
        (upload(client, auth["submit"], other_scores, samples, baseline=BASELINE), 422, "do not belong together"),
        (upload(client, auth["submit"], results, [fewer], baseline=BASELINE), 422, "documents"),
        (upload(client, auth["submit"], not_json, [], baseline=BASELINE), 422, "not valid JSON"),
        (upload(client, auth["submit"], results, samples, baseline="nope"), 404, "unknown baseline"),
        (upload(client, auth["submit"], results, samples, model="a\x1bb"), 422, "model contains control characters"),
        (upload(client, auth["read"], results, samples), 403, "submit"),
    ]
    for response, status, text in cases:
        assert response.status_code == status, response.text
        assert text in response.json()["detail"]
    assert state(client, auth) == []
    assert raw["results"]["gsm8k"]["exact_match,strict-match"] == 0.0


@pytest.mark.lmeval
def test_promotion_refuses_smoke_runs(client: TestClient, auth: dict, tiny_smoke_run) -> None:
    run = upload(client, auth["submit"], *tiny_smoke_run).json()
    response = client.post("/api/v1/baselines", json={"from_run": run["id"], "name": "x"}, headers=auth["admin"])
    assert response.status_code == 422 and "limit" in response.json()["detail"]
    assert (
        client.post("/api/v1/baselines", json={"from_run": run["id"], "name": "x"}, headers=auth["submit"]).status_code
        == 403
    )
    assert len(client.get("/api/v1/baselines", headers=auth["read"]).json()) == 1
