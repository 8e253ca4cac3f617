"""The worker protocol over HTTP (in-process server), on SQLite and Postgres."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from gate.db import transaction, utcnow
from gate.runs import service as runs
from gate.runs.models import Run
from gate.settings import Settings
from gate.worker.agent import Agent
from gate.worker.client import GateClient
from gate.worker.config import WorkerConfig
from tests.conftest import make_token

WORKER = {"name": "npu-1", "backend": "vllm-ascend", "labels": ["ascend910b"], "wait_s": 0}


def submit(client: TestClient, auth: dict, **extra: object) -> int:
    body = {"model": "acme/port", "backend": "vllm-ascend", "tasks": ["gsm8k"], **extra}
    return client.post("/api/v1/runs", json=body, headers=auth["submit"]).json()["id"]


def claim(client: TestClient, auth: dict, **extra: object):
    return client.post("/api/v1/workers/claim", json={**WORKER, **extra}, headers=auth["worker"])


def upload(client: TestClient, auth: dict, run_id: int, lease: str, results: Path, samples: list[Path]):
    files = [("results", ("r.json", results.read_bytes()))]
    files += [("samples", (s.name, s.read_bytes())) for s in samples]
    return client.post(
        f"/api/v1/workers/runs/{run_id}/complete", data={"lease": lease}, files=files, headers=auth["worker"]
    )


def test_routing_by_labels_and_priority(client: TestClient, auth: dict) -> None:
    gpu = submit(client, auth, labels=["h100"])
    low = submit(client, auth, labels=["ascend910b"])
    high = submit(client, auth, labels=["ascend910b"], priority=5)
    other_backend = client.post(
        "/api/v1/runs", json={"model": "m", "backend": "vllm", "tasks": ["gsm8k"]}, headers=auth["submit"]
    ).json()["id"]
    first, second = claim(client, auth).json(), claim(client, auth).json()
    assert (first["run_id"], second["run_id"]) == (high, low)
    assert claim(client, auth).status_code == 204  # the h100 run and the vllm run are not for this worker
    statuses = {r["id"]: r["status"] for r in client.get("/api/v1/runs", headers=auth["read"]).json()["runs"]}
    assert statuses[gpu] == statuses[other_backend] == "queued"
    workers = client.get("/api/v1/workers", headers=auth["read"]).json()
    assert workers[0]["name"] == "npu-1" and workers[0]["labels"] == ["ascend910b"]


def test_a_waiting_claim_gets_a_new_run_within_a_second(client: TestClient, auth: dict) -> None:
    got: dict = {}

    def wait_for_work() -> None:
        response = claim(client, auth, wait_s=10)
        got["at"], got["run"] = time.monotonic(), response.json()

    waiter = threading.Thread(target=wait_for_work)
    waiter.start()
    time.sleep(0.5)
    queued_at = time.monotonic()
    run_id = submit(client, auth, labels=["ascend910b"])
    waiter.join(15)
    assert got["run"]["run_id"] == run_id and got["at"] - queued_at < 1.0


@pytest.mark.lmeval
def test_upload_is_idempotent_and_guarded_by_the_lease(client: TestClient, auth: dict, tiny_smoke_run) -> None:
    results, samples = tiny_smoke_run
    run_id = submit(client, auth)
    lease = claim(client, auth).json()["lease"]
    assert upload(client, auth, run_id, "not-the-lease", results, samples).status_code == 409
    first = upload(client, auth, run_id, lease, results, samples)
    assert first.status_code == 200 and first.json()["status"] == "succeeded"
    replay = upload(client, auth, run_id, lease, results, samples)  # the reply was lost; the worker retries
    assert replay.status_code == 200 and replay.json()["id"] == run_id
    different = upload(client, auth, run_id, lease, results, [])
    assert different.status_code == 409 and "different result" in different.json()["detail"]
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()
    assert len(run["scores"]) == 2 and run["files"] == ["results.json", "samples_gsm8k.jsonl"]
    hb = client.post(f"/api/v1/workers/runs/{run_id}/heartbeat", json={"lease": lease}, headers=auth["worker"])
    assert hb.status_code == 409


def test_heartbeats_carry_the_running_estimate_and_impossible_ones_are_refused(client: TestClient, auth: dict) -> None:
    run_id = submit(client, auth)
    lease = claim(client, auth).json()["lease"]
    path = f"/api/v1/workers/runs/{run_id}/heartbeat"
    trail = {"total": 1319, "points": [[40, 1, 0.000758, 0.970432], [80, 1, 0.000758, 0.940106]]}
    beat = client.post(path, json={"lease": lease, "estimate": trail}, headers=auth["worker"])
    assert beat.status_code == 200
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()["estimate"] == trail
    impossible = [
        ({"total": 1319, "points": [[40, 41, 0.0, 1.0]]}, "right never exceeds it"),
        ({"total": 1319, "points": [[80, 1, 0.0, 1.0], [40, 1, 0.0, 1.0]]}, "answered grows"),
        ({"total": 1319, "points": [[40, 1, 0.9, 0.2]]}, "0 <= low <= high <= 1"),
        ({"total": 10, "points": [[40, 1, 0.0, 1.0]]}, "up to the total"),
        ({"points": []}, "an object with total and points"),
    ]
    for estimate, message in impossible:
        refused = client.post(path, json={"lease": lease, "estimate": estimate}, headers=auth["worker"])
        assert refused.status_code == 422 and message in refused.json()["detail"], refused.json()
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()["estimate"] == trail  # kept as it was


@pytest.mark.lmeval
def test_a_refused_upload_leaves_the_run_as_it_was(
    client: TestClient, auth: dict, tiny_smoke_run, tmp_path: Path
) -> None:
    results, samples = tiny_smoke_run
    run_id = submit(client, auth, tasks=["gsm8k", "mmlu"])
    lease = claim(client, auth).json()["lease"]
    refused = upload(client, auth, run_id, lease, results, samples)
    assert refused.status_code == 422 and "mmlu" in refused.json()["detail"]
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()
    assert run["status"] == "running" and run["scores"] == [] and run["files"] == []
    hb = client.post(f"/api/v1/workers/runs/{run_id}/heartbeat", json={"lease": lease}, headers=auth["worker"])
    assert hb.status_code == 200


def test_cancel_is_seen_by_heartbeat_and_watch(client: TestClient, auth: dict) -> None:
    run_id = submit(client, auth)
    lease = claim(client, auth).json()["lease"]
    watch = client.get(
        f"/api/v1/workers/runs/{run_id}/watch", params={"wait_s": 0}, headers={**auth["worker"], "X-Gate-Lease": lease}
    )
    assert watch.json() == {"state": "running"}
    client.post(f"/api/v1/runs/{run_id}/cancel", headers=auth["submit"])
    started = time.monotonic()
    watch = client.get(
        f"/api/v1/workers/runs/{run_id}/watch", params={"wait_s": 10}, headers={**auth["worker"], "X-Gate-Lease": lease}
    )
    assert watch.json() == {"state": "cancelled"} and time.monotonic() - started < 1
    hb = client.post(f"/api/v1/workers/runs/{run_id}/heartbeat", json={"lease": lease}, headers=auth["worker"])
    assert hb.status_code == 409 and "cancelled" in hb.json()["detail"]


def test_a_lease_that_cannot_be_one_is_stale(client: TestClient, auth: dict) -> None:
    run_id = submit(client, auth)
    claim(client, auth)
    for forged in ("nul\u0000byte", "caf\u00e9"):  # Postgres refuses a NUL in text: refused here before it
        hb = client.post(f"/api/v1/workers/runs/{run_id}/heartbeat", json={"lease": forged}, headers=auth["worker"])
        assert hb.status_code == 409 and "stale" in hb.json()["detail"]


def test_failures_retry_only_for_infrastructure(client: TestClient, auth: dict) -> None:
    infra, user = submit(client, auth), submit(client, auth)
    for attempt in (1, 2, 3):
        lease = claim(client, auth).json()
        assert (lease["run_id"], lease["attempt"]) == (infra, attempt)
        failed = client.post(
            f"/api/v1/workers/runs/{infra}/fail",
            headers=auth["worker"],
            json={"lease": lease["lease"], "reason": "NPU out of memory", "kind": "infrastructure"},
        )
        assert failed.json()["status"] == ("failed" if attempt == 3 else "queued")
    lease = claim(client, auth).json()
    assert lease["run_id"] == user
    failed = client.post(
        f"/api/v1/workers/runs/{user}/fail",
        headers=auth["worker"],
        json={"lease": lease["lease"], "reason": "model not found", "kind": "user"},
    )
    assert failed.json()["status"] == "failed" and failed.json()["attempts"] == 1


def test_reaper_requeues_lost_leases_and_expires_old_runs(client: TestClient, auth: dict, sessions) -> None:
    lost, old = submit(client, auth), submit(client, auth)
    claimed = claim(client, auth).json()
    assert claimed["run_id"] == lost
    with transaction(sessions, write=True) as session:
        session.execute(update(Run).where(Run.id == lost).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        session.execute(update(Run).where(Run.id == old).values(created_at=utcnow() - timedelta(hours=25)))
    with transaction(sessions, write=True) as session:
        assert runs.reap(session, queued_ttl_s=24 * 3600) == (1, 1)
    requeued = client.get(f"/api/v1/runs/{lost}", headers=auth["read"]).json()
    assert requeued["status"] == "queued" and "lease expired" in requeued["failure_reason"]
    expired = client.get(f"/api/v1/runs/{old}", headers=auth["read"]).json()
    assert expired["status"] == "failed" and expired["failure_kind"] == "expired"
    stale = client.post(
        f"/api/v1/workers/runs/{lost}/heartbeat", json={"lease": claimed["lease"]}, headers=auth["worker"]
    )
    assert stale.status_code == 409


def test_draining_worker_claims_nothing_and_hands_back(client: TestClient, auth: dict) -> None:
    run_id = submit(client, auth)
    assert claim(client, auth, draining=True).status_code == 204
    lease = claim(client, auth).json()["lease"]
    released = client.post(f"/api/v1/workers/runs/{run_id}/release", json={"lease": lease}, headers=auth["worker"])
    assert released.json()["status"] == "queued" and released.json()["attempts"] == 0


@pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")  # GateClient's, on a TestClient
def test_a_run_the_worker_refuses_fails_once_as_the_users_error(client: TestClient, auth: dict, tmp_path: Path) -> None:
    """The agent reports a run it will not execute as the user's failure, with the refusal as the reason: no retry."""
    model = tmp_path / "port"
    model.mkdir()
    (model / "config.json").write_text("{}")
    body = {
        "model": str(model),
        "backend": "hf",
        "tasks": ["gsm8k"],
        "options": {"model_args": {"trust_remote_code": True}},
    }
    run_id = client.post("/api/v1/runs", json=body, headers=auth["admin"]).json()["id"]
    worker = GateClient(str(client.base_url), "unused")
    worker.http = client  # the in-process server, reached as a worker reaches a real one
    client.headers.update(auth["worker"])
    agent = Agent(worker, WorkerConfig(backend="hf", work_dir=tmp_path), name="cpu-1")
    claimed = worker.claim("cpu-1", "hf", [], {}, wait_s=0)
    assert claimed["run_id"] == run_id
    assert agent.execute(claimed) == "failed:user"
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()
    assert (run["status"], run["failure_kind"], run["attempts"]) == ("failed", "user", 1)
    assert run["failure_reason"] == "trust_remote_code is not allowed on this worker (--allow-trust-remote-code)"


@pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")  # GateClient's, on a TestClient
def test_a_run_of_a_kind_the_worker_does_not_know_fails_as_the_users_error(
    client: TestClient, auth: dict, tmp_path: Path, sessions
) -> None:
    """Runs are accuracy runs unless told otherwise; the agent dispatches on the claimed kind through the registry."""
    run_id = submit(client, auth, backend="hf")
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()["kind"] == "accuracy"
    with sessions() as session, session.begin():
        session.get_one(Run, run_id).kind = "power"  # a kind a newer server knows and this worker does not
    worker = GateClient(str(client.base_url), "unused")
    worker.http = client
    client.headers.update(auth["worker"])
    claimed = worker.claim("cpu-1", "hf", [], {}, wait_s=0)
    assert (claimed["run_id"], claimed["kind"]) == (run_id, "power")
    assert Agent(worker, WorkerConfig(backend="hf", work_dir=tmp_path), name="cpu-1").execute(claimed) == "failed:user"
    run = client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()
    assert (run["status"], run["failure_kind"], run["kind"]) == ("failed", "user", "power")
    known = "accuracy, alignment, serving, smoke"
    assert run["failure_reason"] == f"this worker cannot run checks of kind 'power' (it knows {known})"


def test_leases_are_stored_hashed_and_worker_names_bound_to_their_token(
    client: TestClient, auth: dict, settings: Settings, sessions
) -> None:
    run_id = submit(client, auth, backend="hf")
    claim = {"name": "gpu-7", "backend": "hf", "labels": ["a"], "wait_s": 0}
    lease = client.post("/api/v1/workers/claim", json=claim, headers=auth["worker"]).json()["lease"]
    with sessions() as session:
        stored = session.get_one(Run, run_id).lease_token
    assert stored == hashlib.sha256(lease.encode()).hexdigest() and lease not in stored
    other = {"Authorization": f"Bearer {make_token(settings.database_url, 'other-worker', 'worker')}"}
    hijack = {**claim, "labels": ["evil"], "draining": True}
    refused = client.post("/api/v1/workers/claim", json=hijack, headers=other)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "worker name 'gpu-7' belongs to another token: choose another --name"
    (worker,) = client.get("/api/v1/workers", headers=auth["read"]).json()
    assert (worker["labels"], worker["draining"]) == (["a"], False)
