"""Serving runs through the API: submission, the worker's upload checked and judged on the server against a
reference run, reading back. Reports carry real `vllm bench serve` figures (tests/serving_reports.py), scaled per
round to stand for a faster or slower server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from gate.app import create_app
from gate.checks.serving import judge, spec
from gate.settings import Settings
from tests.conftest import make_token
from tests.serving_reports import PROMPTS, report_for

MODEL = "/models/tiny"
REFERENCED = "serving-reference"


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """An app whose baselines include one naming serving run 1 as its reference, with a looser TPOT ratio."""
    shipped = Settings().baselines_dir
    for path in shipped.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    referenced = {
        "name": REFERENCED,
        "model": MODEL,
        "source": "test",
        "scores": [{"benchmark": "GSM8K", "task": "gsm8k", "metric": "exact_match,strict-match", "score": 0.5}],
        "checks": {"serving": {"reference_run": 1, "tpot_ratio": 1.5}},
    }
    (tmp_path / f"{REFERENCED}.yaml").write_text(yaml.safe_dump(referenced))
    settings = Settings(database_url=database_url, lease_s=30, reaper_interval_s=60, baselines_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        headers = {
            s: {"Authorization": f"Bearer {make_token(database_url, s, s)}"}
            for s in ("read", "submit", "worker", "admin")
        }
        yield client, headers


def submit_and_claim(client: TestClient, headers: dict, **extra: Any) -> tuple[dict, dict]:
    body = {"model": MODEL, "num_prompts": PROMPTS, **extra}
    created = client.post("/api/v1/serving/runs", json=body, headers=headers["submit"])
    assert created.status_code == 201, created.text
    worker = {"name": "w", "backend": created.json()["backend"], "wait_s": 0}
    claimed = client.post("/api/v1/workers/claim", json=worker, headers=headers["worker"])
    assert claimed.status_code == 200, claimed.text
    return created.json(), claimed.json()


def upload(client: TestClient, headers: dict, run_id: int, lease: str, report: dict) -> Any:
    body = {"lease": lease, "report": report, "environment": {"python": "3.11"}}
    return client.post(f"/api/v1/workers/runs/{run_id}/serving", json=body, headers=headers["worker"])


def measured(client: TestClient, headers: dict, speeds: list[float], **extra: Any) -> dict:
    """A serving run queued, claimed and uploaded at the given round speeds: its run as the upload answers."""
    run, claimed = submit_and_claim(client, headers, **extra)
    done = upload(client, headers, run["id"], claimed["lease"], report_for(run["options"], speeds))
    assert done.status_code == 200, done.text
    return done.json()


def test_a_benchmark_is_queued_claimed_stored_and_served_without_a_verdict(api) -> None:
    client, headers = api
    run, claimed = submit_and_claim(client, headers, engine_args={"max_model_len": 512}, priority=3)
    assert run["kind"] == "serving" and run["tasks"] == [] and run["model"] == MODEL and run["backend"] == "vllm"
    assert run["options"] == spec.check({"model": MODEL, "num_prompts": PROMPTS, "engine_args": {"max_model_len": 512}})
    assert claimed["kind"] == "serving" and claimed["options"] == run["options"]

    report = report_for(run["options"])
    done = upload(client, headers, run["id"], claimed["lease"], report)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "succeeded" and done.json()["verdict"] is None

    got = client.get(f"/api/v1/runs/{run['id']}/serving", headers=headers["read"]).json()
    assert got["outcome"] is None and got["reasons"] == [judge.NOT_GATED] and got["reference_run_id"] is None
    assert got["report"] == report and got["thresholds"] == {"throughput_ratio": 0.97, "tpot_ratio": 1.03}
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=headers["read"]).json()
    assert "serving.json" in detail["files"]
    scores = {(s["task"], s["metric"]): s for s in detail["scores"]}
    throughput = scores[("c=10", "output_throughput")]
    assert throughput["value"] == pytest.approx(1368.319416430921)  # the benchmark's own figure, three equal rounds
    assert throughput["n_samples"] == 3 * PROMPTS
    assert scores[("c=10", "per_request_decode_tok_s")]["value"] == pytest.approx(128 / 0.9310892637998829)
    artifact = client.get(f"/api/v1/runs/{run['id']}/files/serving.json", headers=headers["read"])
    assert artifact.status_code == 200 and artifact.json() == report


def test_a_rerun_passes_and_a_halved_server_fails_against_its_reference(api) -> None:
    client, headers = api
    reference = measured(client, headers, [0.99, 1.0, 1.01])
    rerun = measured(client, headers, [0.98, 1.0, 1.02], reference_run=reference["id"])
    assert rerun["verdict"] == "pass"

    slowed = measured(client, headers, [0.49, 0.5, 0.51], reference_run=reference["id"])
    assert slowed["verdict"] == "fail"
    got = client.get(f"/api/v1/runs/{slowed['id']}/serving", headers=headers["read"]).json()
    assert got["outcome"] == "fail" and got["reference_run_id"] == reference["id"]
    assert got["reasons"][0].startswith("c=10: output throughput 684.2 tok/s is 50.0% of the reference's 1368 tok/s")
    detail = client.get(f"/api/v1/runs/{slowed['id']}", headers=headers["read"]).json()
    assert detail["verdict_reason"] == " ".join(got["reasons"])


def test_a_promoted_run_is_the_reference_of_later_runs(api) -> None:
    client, headers = api
    reference = measured(client, headers, [0.99, 1.0, 1.01])
    promoted = client.post(
        "/api/v1/baselines", json={"from_run": reference["id"], "name": "tiny-cpu-serving"}, headers=headers["admin"]
    )
    assert promoted.status_code == 201, promoted.text
    rerun = measured(client, headers, [0.98, 1.0, 1.02], baseline="tiny-cpu-serving")
    slowed = measured(client, headers, [0.49, 0.5, 0.51], baseline="tiny-cpu-serving")
    assert (rerun["verdict"], slowed["verdict"]) == ("pass", "fail")
    got = client.get(f"/api/v1/runs/{slowed['id']}/serving", headers=headers["read"]).json()
    assert got["reference_run_id"] == reference["id"]
    listed = client.get("/api/v1/baselines", headers=headers["read"]).json()
    entry = next(b for b in listed if b["name"] == "tiny-cpu-serving")
    assert entry["from_run"] == reference["id"] and entry["scores"] == []
    assert entry["checks"] == {"serving": {"reference_run": reference["id"]}}
    assert client.get("/baselines", headers=headers["read"]).status_code == 200


def test_the_baseline_names_the_reference_and_its_ratios(api) -> None:
    client, headers = api
    reference = measured(client, headers, [1.0, 1.0, 1.0])
    assert reference["id"] == 1  # the baseline's reference_run
    # TPOT 1/0.75 = 133 % of the reference's: within the baseline's 1.5, but throughput at 75 % still fails
    slower = measured(client, headers, [0.75, 0.75, 0.75], baseline=REFERENCED)
    got = client.get(f"/api/v1/runs/{slower['id']}/serving", headers=headers["read"]).json()
    assert got["thresholds"] == {"throughput_ratio": 0.97, "tpot_ratio": 1.5} and got["reference_run_id"] == 1
    assert got["outcome"] == "fail" and len(got["reasons"]) == 1 and "output throughput" in got["reasons"][0]


def test_a_reference_with_other_engine_arguments_is_not_comparable(api) -> None:
    client, headers = api
    reference = measured(client, headers, [1.0, 1.0, 1.0])
    other = measured(client, headers, [1.0, 1.0, 1.0], reference_run=reference["id"], engine_args={"max_num_seqs": 1})
    assert other["verdict"] == "not_comparable"
    detail = client.get(f"/api/v1/runs/{other['id']}", headers=headers["read"]).json()
    assert detail["verdict_reason"] == (
        f"not comparable with reference run {reference['id']}: the engine arguments differ (max_num_seqs: 1 vs None)."
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"reference_run": 99}, "reference run 99 does not exist"),
        ({"profile": "fast"}, "profile must be card or sweep, not 'fast'."),
        ({"rounds": 0}, "rounds must be an integer from 1 to 10, got 0."),
        ({"baseline": "nope"}, "nope"),
        ({"backend": "openai", "base_url": "http://10.0.0.1:8000"}, "base_url"),  # only the worker names a server
    ],
)
def test_a_bad_submission_is_one_sentence(api, body: dict, said: str) -> None:
    client, headers = api
    answer = client.post("/api/v1/serving/runs", json={"model": MODEL, **body}, headers=headers["submit"])
    assert answer.status_code in (404, 422), answer.text
    assert said in answer.json()["detail"] and "\n" not in answer.json()["detail"]


def test_only_a_succeeded_serving_run_is_a_reference(api) -> None:
    client, headers = api
    queued, _ = submit_and_claim(client, headers)
    answer = client.post(
        "/api/v1/serving/runs", json={"model": MODEL, "reference_run": queued["id"]}, headers=headers["submit"]
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        f"reference run {queued['id']} is a serving run, running: a reference is a succeeded serving run"
    )


def test_a_bad_upload_is_refused_in_one_sentence_and_the_lease_is_checked_first(api) -> None:
    client, headers = api
    run, claimed = submit_and_claim(client, headers)
    report = report_for(run["options"])
    report["levels"][0]["rounds"][2]["p90_tpot_ms"] = 1e9
    refused = upload(client, headers, run["id"], claimed["lease"], report)
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith(
        "levels[0].rounds[2]: the tpot percentiles must be ordered median <= p90 <= p99"
    )
    stale = upload(client, headers, run["id"], "not-the-lease", report)  # a bad report too: the lease speaks first
    assert stale.status_code == 409

    good = report_for(run["options"])
    assert upload(client, headers, run["id"], claimed["lease"], good).json()["status"] == "succeeded"
    replay = upload(client, headers, run["id"], claimed["lease"], good)
    assert replay.status_code == 200 and replay.json()["status"] == "succeeded"
    other = upload(client, headers, run["id"], claimed["lease"], report_for(run["options"], [0.5, 0.5, 0.5]))
    assert other.status_code == 409


def test_a_run_without_a_report_says_why(api) -> None:
    client, headers = api
    run, _ = submit_and_claim(client, headers)
    missing = client.get(f"/api/v1/runs/{run['id']}/serving", headers=headers["read"])
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"run {run['id']} has no serving report (a serving run, running)"
