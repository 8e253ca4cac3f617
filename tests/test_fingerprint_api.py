"""The model fingerprint on the server: taken from the worker's upload, checked, stored, shown, and compared with
the reference run's when a verdict is made. Runs go through the worker protocol (in-process server)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.test_worker_protocol import claim, submit

FP_GPU = "3f" * 32  # the reference run's weights
FP_OTHER = "a0" * 32


def complete(
    client: TestClient, auth: dict, results: Path, samples: list[Path], fingerprint: str | None, **run: object
) -> dict:
    """Queue a run, claim it as a worker and upload real lm-eval outputs with the given model fingerprint."""
    run_id = submit(client, auth, **run)
    lease = claim(client, auth).json()["lease"]
    files = [("results", ("r.json", results.read_bytes()))] + [("samples", (s.name, s.read_bytes())) for s in samples]
    data = {"lease": lease} | ({"model_fingerprint": fingerprint} if fingerprint else {})
    response = client.post(f"/api/v1/workers/runs/{run_id}/complete", data=data, files=files, headers=auth["worker"])
    assert response.status_code == 200, response.text
    return client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()


@pytest.mark.parametrize(
    "bad", ["3F" * 32, "3f" * 31, "3f" * 33, "g" * 64, "sha256:" + "3f" * 32, "/models/qwen3"], ids=str
)
def test_a_malformed_fingerprint_is_refused(client: TestClient, auth: dict, bad: str) -> None:
    run_id = submit(client, auth)
    lease = claim(client, auth).json()["lease"]
    upload = client.post(
        f"/api/v1/workers/runs/{run_id}/complete",
        data={"lease": lease, "model_fingerprint": bad},
        files=[("results", ("r.json", b"{}"))],
        headers=auth["worker"],
    )
    assert upload.status_code == 422 and "model_fingerprint" in upload.text
    failure = client.post(
        f"/api/v1/workers/runs/{run_id}/fail",
        json={"lease": lease, "reason": "x", "kind": "user", "model_fingerprint": bad},
        headers=auth["worker"],
    )
    assert failure.status_code == 422 and "model_fingerprint" in failure.text
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()["status"] == "running"
    imported = client.post(
        "/api/v1/runs/import",
        data={"model": "acme/port", "model_fingerprint": bad},
        files=[("results", ("r.json", b"{}"))],
        headers=auth["submit"],
    )
    assert imported.status_code == 422 and "model_fingerprint" in imported.text


def test_a_failed_run_keeps_the_fingerprint_of_what_it_tried(client: TestClient, auth: dict) -> None:
    run_id = submit(client, auth)
    lease = claim(client, auth).json()["lease"]
    body = {"lease": lease, "reason": "lm-eval exited with 1", "kind": "user", "model_fingerprint": FP_GPU}
    assert client.post(f"/api/v1/workers/runs/{run_id}/fail", json=body, headers=auth["worker"]).status_code == 200
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()
    assert (run["status"], run["model_fingerprint"]) == ("failed", FP_GPU)
    listed = client.get("/api/v1/runs", headers=auth["read"]).json()["runs"]
    assert [r["model_fingerprint"] for r in listed if r["id"] == run_id] == [FP_GPU]


@pytest.mark.lmeval
def test_a_verdict_against_a_reference_run_says_whether_the_weights_were_the_same(
    client: TestClient, auth: dict, gold_run_927, gold_run_880
) -> None:
    reference = complete(client, auth, *gold_run_927, FP_GPU)
    assert reference["model_fingerprint"] == FP_GPU
    promoted = client.post(
        "/api/v1/baselines", json={"from_run": reference["id"], "name": "port-gpu-bf16"}, headers=auth["admin"]
    )
    assert promoted.status_code == 201, promoted.text

    same = complete(client, auth, *gold_run_880, FP_GPU, baseline="port-gpu-bf16")
    other = complete(client, auth, *gold_run_880, FP_OTHER, baseline="port-gpu-bf16")
    unknown = complete(client, auth, *gold_run_880, None, baseline="port-gpu-bf16")
    notes = {}
    for name, run in (("same", same), ("other", other), ("unknown", unknown)):
        (verdict,) = run["verdicts"]
        assert verdict["outcome"] == "fail" and verdict["details"]["paired"]["regressions"] == 47
        notes[name] = [n for n in verdict["details"]["notes"] if "weights" in n]
        assert verdict["details"]["same_weights"] == {"same": True, "other": False, "unknown": None}[name]
    assert notes["same"] == [
        "identical weights: the run evaluated the same model files as the reference run (equal model "
        "fingerprints), so any difference comes from the stack (backend, device, settings), not the weights"
    ]
    assert notes["other"] == [
        "different weights: the run's model files differ from the reference run's (model fingerprints differ)"
    ]
    assert notes["unknown"] == []
    by_hand = client.post(  # a run made by hand, imported with the fingerprint of the folder it evaluated
        "/api/v1/runs/import",
        files=[("results", ("r.json", gold_run_880[0].read_bytes()))]
        + [("samples", (p.name, p.read_bytes())) for p in gold_run_880[1]],
        data={"model": "acme/port", "baseline": "port-gpu-bf16", "model_fingerprint": FP_GPU},
        headers=auth["submit"],
    ).json()
    assert by_hand["model_fingerprint"] == FP_GPU and by_hand["verdicts"][0]["details"]["same_weights"] is True
    assert (same["model_fingerprint"], other["model_fingerprint"], unknown["model_fingerprint"]) == (
        FP_GPU,
        FP_OTHER,
        None,
    )

    page = client.get(f"/runs/{same['id']}", headers=auth["read"]).text
    assert f'<code class="fingerprint">{FP_GPU}</code>' in page and "<strong>Identical weights</strong>" in page
    assert "<strong>Different weights</strong>" in client.get(f"/runs/{other['id']}", headers=auth["read"]).text
    compare = f"/compare?a={reference['id']}&b="
    assert "<strong>Identical weights</strong>" in client.get(compare + str(same["id"]), headers=auth["read"]).text
    assert "<strong>Different weights</strong>" in client.get(compare + str(other["id"]), headers=auth["read"]).text
    assert "B has no model fingerprint" in client.get(compare + str(unknown["id"]), headers=auth["read"]).text

    exported = client.get("/api/v1/runs/export", params={"format": "csv"}, headers=auth["read"]).text
    by_run = {int(row["run_id"]): row["model_fingerprint"] for row in csv.DictReader(io.StringIO(exported))}
    assert by_run == {
        reference["id"]: FP_GPU,
        same["id"]: FP_GPU,
        other["id"]: FP_OTHER,
        unknown["id"]: "",
        by_hand["id"]: FP_GPU,
    }
    rows = client.get("/api/v1/runs/export", params={"format": "json"}, headers=auth["read"]).json()
    assert {r["run_id"]: r["model_fingerprint"] for r in rows}[other["id"]] == FP_OTHER
