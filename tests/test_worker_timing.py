"""The worker's clock against the server's lease: renewals and fencing fit the lease the server grants, and the
claim long-poll lasts as long as `--claim-wait-s` says. Real server and `gate worker` processes."""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate.worker.agent import Timing
from tests.processes import Api, server, worker_process
from tests.test_worker_e2e import smoke_run, stop


def worker_token(api: Api) -> str:
    return api.headers["worker"]["Authorization"].split()[1]


@given(lease_s=st.floats(0.1, 3600), heartbeat_s=st.floats(0.1, 600), fence_s=st.floats(0.1, 3600))
def test_timing_fits_any_lease(lease_s: float, heartbeat_s: float, fence_s: float) -> None:
    chosen = Timing(heartbeat_s=heartbeat_s, fence_s=fence_s)
    fitted = chosen.within(lease_s)
    assert fitted.heartbeat_s <= lease_s / 3 and fitted.fence_s < lease_s
    assert fitted.heartbeat_s <= heartbeat_s and fitted.fence_s <= fence_s  # never slower than asked
    assert (fitted.claim_wait_s, fitted.cancel_grace_s) == (chosen.claim_wait_s, chosen.cancel_grace_s)


def test_the_default_timing_fits_the_default_lease() -> None:
    assert Timing().within(300.0) == Timing()


@pytest.mark.lmeval
def test_a_short_server_lease_keeps_a_default_worker_alive(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    lease_s = 3.0
    with server(database_url, tmp_path, lease_s=str(lease_s)) as s:
        api = Api(s)
        # the worker's own defaults (renew every 30 s, fence after 240 s) would lose a 3 s lease ten times over
        worker = worker_process(s.url, worker_token(api), tmp_path / "w", name="w")
        try:
            run = api.wait(api.submit(**smoke_run(tiny_model, limit=8, max_gen_toks=64))["id"])
        finally:
            stop(worker)
    assert run["status"] == "succeeded" and run["attempts"] == 1, run["failure_reason"]
    took_s = (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
    assert took_s > 3 * lease_s, f"the run took {took_s:.1f} s: too short to outlive several leases"
    log = (tmp_path / "worker-w.log").read_text()
    assert "renewing every 1 s, fencing after 2.4 s" in log and "evaluation stopped" not in log


def test_the_claim_long_poll_lasts_claim_wait_s(database_url: str, tmp_path: Path) -> None:
    claim_wait_s = 3.0
    with server(database_url, tmp_path) as s:
        api = Api(s)
        worker = worker_process(
            s.url, worker_token(api), tmp_path / "w", name="w", extra=("--claim-wait-s", str(claim_wait_s))
        )
        try:
            # every claim registers the worker, so last_seen_at moves once per long-poll while nothing is queued
            seen: list[datetime] = []
            deadline = time.monotonic() + 4 * claim_wait_s + 15  # the worker's start-up, then four claims
            while time.monotonic() < deadline and len(seen) < 4:
                workers = api.http.get("/api/v1/workers", headers=api.headers["admin"]).json()
                stamps = [datetime.fromisoformat(w["last_seen_at"]) for w in workers]
                if stamps and (not seen or stamps[0] != seen[-1]):
                    seen.append(stamps[0])
                time.sleep(0.05)
        finally:
            stop(worker)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(seen)]
    assert len(gaps) == 3, seen
    assert all(claim_wait_s <= gap < claim_wait_s + 1 for gap in gaps), gaps
