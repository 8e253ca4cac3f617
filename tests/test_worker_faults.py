"""Faults, for real, with processes: a killed worker, a frozen worker, a server restart, cancel and drain.

Leases are compressed (4 s lease, 1 s heartbeat, 3 s fence) so the tests run in seconds, not minutes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_until
from tests.processes import Api, Server, server, worker_process
from tests.test_worker_e2e import lm_eval_children, smoke_run, stop

pytestmark = pytest.mark.lmeval
FAST = ("--heartbeat-s", "1", "--fence-s", "3")


def token(api: Api) -> str:
    return api.headers["worker"]["Authorization"].split()[1]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise TimeoutError(what)


def evaluating(worker) -> list[psutil.Process]:
    return wait_for(lambda: lm_eval_children(psutil.Process(worker.pid)), 60, "lm-eval never started")


def one_result(api: Api, run: dict, limit: int) -> None:
    assert run["status"] == "succeeded"
    assert len(run["scores"]) == 2 and len(run["verdicts"]) == 1
    samples = api.http.get(
        f"/api/v1/runs/{run['id']}/samples", params={"limit": 2000}, headers=api.headers["admin"]
    ).json()
    assert len(samples) == 2 * limit
    assert len({(s["filter"], s["doc_id"]) for s in samples}) == 2 * limit


def test_kill_9_mid_run_another_worker_finishes(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    with server(database_url, tmp_path, lease_s="4") as s:
        api = Api(s)
        a = worker_process(s.url, token(api), tmp_path / "a", name="a", extra=FAST)
        run_id = api.submit(**smoke_run(tiny_model))["id"]
        children = evaluating(a)
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
        psutil.wait_procs(children, timeout=10)
        assert not any(c.is_running() for c in children), "the evaluation outlived its agent"
        requeued = api.wait(run_id, predicate=lambda r: r["status"] == "queued", timeout=30)
        assert requeued["attempts"] == 1 and "lease expired" in requeued["failure_reason"]
        b = worker_process(s.url, token(api), tmp_path / "b", name="b", extra=FAST)
        try:
            run = api.wait(run_id)
            # the second attempt is the last: b held its lease throughout (else its log says what happened)
            assert run["attempts"] == 2, (tmp_path / "worker-b.log").read_text()[-4000:]
            one_result(api, run, 4)
        finally:
            stop(b)


def test_frozen_worker_is_fenced_and_its_writes_refused(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    with server(database_url, tmp_path, lease_s="4") as s:
        api = Api(s)
        a = worker_process(s.url, token(api), tmp_path / "a", name="a", extra=FAST)
        run_id = api.submit(**smoke_run(tiny_model, limit=8, max_gen_toks=64))["id"]
        frozen = [psutil.Process(a.pid), *evaluating(a)]
        for p in frozen:
            p.suspend()
        api.wait(run_id, predicate=lambda r: r["status"] == "queued", timeout=30)
        b = worker_process(s.url, token(api), tmp_path / "b", name="b", extra=FAST)
        try:
            finished = api.wait(run_id)
            one_result(api, finished, 8)
            for p in frozen:
                p.resume()
            # the resumed worker notices it lost the lease and ends its own evaluation
            psutil.wait_procs(frozen[1:], timeout=20)
            assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in frozen[1:])
            time.sleep(2)
            after = api.run(run_id)
            assert (after["finished_at"], after["scores"], after["attempts"]) == (
                finished["finished_at"],
                finished["scores"],
                2,
            )
            log = (tmp_path / "worker-a.log").read_text()
            assert "evaluation stopped" in log or "lease is gone" in log
        finally:
            stop(a, b)


def test_server_restart_while_a_worker_uploads(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    first = Server(database_url, tmp_path, lease_s="60").start()
    api = Api(first)
    a = worker_process(
        first.url, token(api), tmp_path / "a", name="a", extra=("--heartbeat-s", "1", "--fence-s", "120")
    )
    try:
        run_id = api.submit(**smoke_run(tiny_model))["id"]
        evaluating(a)
        first.process.send_signal(signal.SIGKILL)  # a crash, not a polite stop
        first.process.wait()
        wait_for(lambda: list((tmp_path / "a").rglob("results_*.json")), 120, "lm-eval did not finish")
        time.sleep(2)  # the worker is now retrying its upload against a dead server
        second = Server(database_url, tmp_path, port=first.port, lease_s="60").start()
        try:
            run = api.wait(run_id)
            assert run["attempts"] == 1
            one_result(api, run, 4)
        finally:
            second.stop()
    finally:
        stop(a)
        first.stop()


def test_cancel_reaches_the_worker_and_ends_its_evaluation(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    with server(database_url, tmp_path, lease_s="180") as s:
        api = Api(s)
        # renewals a minute apart: within the 15 s below only the watch can bring the cancel
        a = worker_process(
            s.url, token(api), tmp_path / "a", name="a", extra=("--cancel-grace-s", "10", "--heartbeat-s", "60")
        )
        try:
            run_id = api.submit(**smoke_run(tiny_model, limit=16, max_gen_toks=256))["id"]
            children = evaluating(a)
            cancelled_at = time.monotonic()
            response = api.http.post(f"/api/v1/runs/{run_id}/cancel", headers=api.headers["submit"])
            assert response.json()["status"] == "cancelled"
            _gone, alive = psutil.wait_procs(children, timeout=30)
            assert not alive and time.monotonic() - cancelled_at < 15  # about a second, then at most the grace
            # the agent logs once its stop returns, a moment after the children are gone
            wait_until(lambda: "evaluation stopped (cancelled)" in (tmp_path / "worker-a.log").read_text(), 10)
            assert api.run(run_id)["status"] == "cancelled" and api.run(run_id)["scores"] == []
            assert a.poll() is None, "the worker itself keeps serving"
        finally:
            stop(a)


def test_sigterm_drains_and_hands_the_run_back(database_url: str, tmp_path: Path, tiny_model: Path) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        a = worker_process(s.url, token(api), tmp_path / "a", name="a")
        run_id = api.submit(**smoke_run(tiny_model, limit=16, max_gen_toks=256))["id"]
        children = evaluating(a)
        a.send_signal(signal.SIGTERM)
        started = time.monotonic()
        queued = api.wait(run_id, predicate=lambda r: r["status"] == "queued", timeout=30)
        assert time.monotonic() - started < 5, "the drain took longer than 5 s to hand the run back"
        assert queued["attempts"] == 0, "a handed-back attempt is not counted"
        assert a.wait(30) == 0
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive
