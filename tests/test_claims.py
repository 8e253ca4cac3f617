"""Concurrent claims: two API processes on one database, four workers, 50 queued runs: each runs once."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from gate.worker.client import GateClient
from tests.processes import Api, server


@pytest.mark.lmeval
def test_fifty_runs_four_workers_two_servers(database_url: str, tmp_path: Path, tiny_smoke_run) -> None:
    results, samples = tiny_smoke_run
    with server(database_url, tmp_path) as one, server(database_url, tmp_path) as two:
        api = Api(one)
        token = api.headers["worker"]["Authorization"].split()[1]
        ids = [api.submit(model=f"acme/m{i}", backend="hf", tasks=["gsm8k"])["id"] for i in range(50)]
        claims: Counter[int] = Counter()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work(index: int) -> None:
            client = GateClient((one, two)[index % 2].url, token)
            try:
                while True:
                    claimed = client.claim(f"w{index}", "hf", [], {}, wait_s=0.5)
                    if claimed is None:
                        return
                    with lock:
                        claims[claimed["run_id"]] += 1
                    client.heartbeat(claimed["run_id"], claimed["lease"], 1, 1, "")
                    client.complete(claimed["run_id"], claimed["lease"], results, samples, {}, "")
            except BaseException as exc:
                errors.append(exc)
            finally:
                client.close()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors
        assert sorted(claims) == ids and set(claims.values()) == {1}
        for run_id in ids:
            run = api.run(run_id)
            assert (run["status"], run["attempts"], len(run["scores"])) == ("succeeded", 1, 2)
