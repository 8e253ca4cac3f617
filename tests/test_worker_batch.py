"""A worker as a batch job starts it (Slurm): `--exit-when-idle S` gives the node back, `--once` executes one run.
Real `gate serve` and `gate worker` processes; the runs name a model that is not there, which the worker fails as
the user's error before any engine starts."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.processes import Api, server, worker_process
from tests.test_worker_e2e import smoke_run, stop

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # processes; claims: API tests
EXIT_LIMIT_S = 60.0  # only a guard against a worker that never exits: the assertions measure the time


def worker_token(api: Api) -> str:
    return api.headers["worker"]["Authorization"].split()[1]


def registered(api: Api) -> float:
    """When the worker's first claim reached the server (each claim registers the worker), on this clock."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if api.http.get("/api/v1/workers", headers=api.headers["admin"]).json():
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError("the worker never claimed")


def exited(worker: subprocess.Popen) -> int:
    try:
        return worker.wait(EXIT_LIMIT_S)
    finally:
        stop(worker)


def test_an_idle_worker_exits_after_exit_when_idle(database_url: str, tmp_path: Path) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        started = time.monotonic()
        worker = worker_process(
            s.url, worker_token(api), tmp_path / "w", name="w", data=(), extra=("--exit-when-idle", "2")
        )
        claiming = registered(api)
        code = exited(worker)
        ended = time.monotonic()
    assert code == 0
    # idle from its first claim: not before 2 s (the claim long-poll is 2 s too, so one claim would look the same),
    # and not a long-poll or two later either
    assert 2 - 0.5 <= ended - claiming < 2 + 3, ended - claiming
    assert ended - started < 30
    assert "nothing claimed for 2 s" in (tmp_path / "worker-w.log").read_text()


def test_once_executes_one_of_two_queued_runs(database_url: str, tmp_path: Path) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        runs = [api.submit(**smoke_run(tmp_path / f"no-model-{n}")) for n in range(2)]
        worker = worker_process(s.url, worker_token(api), tmp_path / "w", name="w", data=(), extra=("--once",))
        code = exited(worker)
        first, second = (api.run(run["id"]) for run in runs)
    assert code == 0
    assert first["status"] == "failed" and first["attempts"] == 1 and "does not exist" in first["failure_reason"]
    assert second["status"] == "queued" and second["attempts"] == 0


def test_once_waits_for_a_run_and_once_with_exit_when_idle_gives_up(database_url: str, tmp_path: Path) -> None:
    with server(database_url, tmp_path) as s:
        api = Api(s)
        waiting = worker_process(s.url, worker_token(api), tmp_path / "w1", name="w1", data=(), extra=("--once",))
        try:
            time.sleep(max(0.0, registered(api) + 2 * 2 + 0.5 - time.monotonic()))  # two 2 s long-polls
            assert waiting.poll() is None, "--once alone exited with nothing to do"
            run = api.submit(**smoke_run(tmp_path / "no-model"))
            code = exited(waiting)
        finally:
            stop(waiting)
        executed = api.run(run["id"])
        giving_up = worker_process(
            s.url, worker_token(api), tmp_path / "w2", name="w2", data=(), extra=("--once", "--exit-when-idle", "1")
        )
        gave_up = exited(giving_up)
    assert code == 0 and executed["status"] == "failed" and executed["attempts"] == 1
    assert gave_up == 0
