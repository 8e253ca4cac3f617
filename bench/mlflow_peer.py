"""gate beside an MLflow tracking server, on the same 10,000 finished runs, measured interleaved on one machine.

Both servers run side by side: `gate serve` (one API process per core, its default) and `mlflow server` under gunicorn,
2 processes x 4 threads. Each round measures, for each server in turn (the order alternates), four operations at
1 and at 8 concurrent clients:

- history: one model's gsm8k runs, newest first (gate `GET /runs?model=&task=`; MLflow `runs/search` filtered on the
  run's params);
- latest 50: the 50 newest runs (gate `GET /runs?limit=50`; MLflow `runs/search` ordered by start time);
- run by id (gate `GET /runs/{id}`; MLflow `runs/get`);
- store a finished run: gate `POST /runs/import` of an lm-eval results file (verdict included); MLflow the three
  calls its client makes (`runs/create`, `runs/log-batch`, `runs/update` to FINISHED).

The clients are threads that each keep one HTTP/1.1 connection (the standard library's http.client: the thinnest
client there is, the same for both, so neither server's figure carries client overhead the other's does not).
Each figure is the ratio of the servers' median latencies within a round; the table gives the median ratio over the
rounds and the worst round's.

    make .venv-mlflow/.installed
    .venv/bin/python bench/mlflow_peer.py [--runs 10000] [--rounds 5] [--requests 40] [--db sqlite --db postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api_latency import SeedRun, seed, seed_runs
from bench.support import POSTGRES_URL, free_port, fresh_database, gate_server, port_of, token
from gate.db import make_engine

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ("history", "latest 50", "run by id", "store a run")
STORED_MODEL = "acme/port-under-test"  # stored runs go to a model of their own: the others' histories stay 50 long


def epoch_ms(run: SeedRun, attribute: str) -> int:
    return int(getattr(run, attribute).timestamp() * 1000)


# ---- the two servers ----


@contextmanager
def mlflow_store(kind: str, workdir: Path) -> Iterator[str]:
    """An empty MLflow backend store: an SQLite file, or a Postgres database of its own (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'mlflow.db'}"
        return
    name = f"mlflow_peer_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def seed_mlflow(python: Path, uri: str, runs: list[SeedRun], workdir: Path) -> tuple[str, dict[int, str]]:
    """Store the runs with MLflow's official client (bench/mlflow_seed.py, under MLflow's own environment)."""
    records = workdir / "runs.jsonl"
    with records.open("w", encoding="utf-8") as out:
        for run in runs:
            row = {"id": run.id, "model": run.model, "verdict": run.verdict, "strict": run.strict}
            row |= {"flexible": run.flexible, "created_ms": epoch_ms(run, "created_at")}
            out.write(json.dumps(row | {"finished_ms": epoch_ms(run, "finished_at")}) + "\n")
    done = subprocess.run(
        [str(python), str(ROOT / "bench" / "mlflow_seed.py"), uri, str(records)],
        capture_output=True,
        text=True,
        check=True,
    )
    experiment, *lines = done.stdout.split("\n")
    ids = dict(line.split() for line in lines if line.strip())
    return experiment, {int(gate_id): run_id for gate_id, run_id in ids.items()}


@contextmanager
def mlflow_server(mlflow: Path, uri: str, workdir: Path) -> Iterator[int]:
    port = free_port()
    log = (workdir / "mlflow.log").open("ab")
    process = subprocess.Popen(
        [
            *(str(mlflow), "server", "--backend-store-uri", uri, "--default-artifact-root", str(workdir / "artifacts")),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--gunicorn-opts", "--threads 4"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # gunicorn's workers go with it
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise TimeoutError(f"mlflow server did not start: see {workdir / 'mlflow.log'}")
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


# ---- the operations, one request (or MLflow's three) on one connection ----

Call = Callable[[http.client.HTTPConnection, int], None]


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None, headers: dict) -> bytes:
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status not in (200, 201):
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return data


def results_file(score: float) -> bytes:
    """An lm-eval results file of one gsm8k run, as `lm_eval --output_path` writes it."""
    return json.dumps({
        "results": {"gsm8k": {
            "alias": "gsm8k", "exact_match,strict-match": score, "exact_match_stderr,strict-match": 0.0126,
            "exact_match,flexible-extract": score + 0.01, "exact_match_stderr,flexible-extract": 0.0126,
        }},
        "n-shot": {"gsm8k": 5},
        "n-samples": {"gsm8k": {"original": 1319, "effective": 1319}},
        "config": {"model": "vllm", "model_args": f"pretrained={STORED_MODEL}"},
        "lm_eval_version": "0.4.13",
    }).encode()  # fmt: skip


def gate_calls(token_: str, ids: list[int], models: list[str]) -> dict[str, Call]:
    auth = {"Authorization": f"Bearer {token_}"}
    upload = httpx.Request(
        "POST",
        "http://gate/api/v1/runs/import",
        files={"results": ("results_2026-12-07T10-00-00.json", results_file(0.70))},
        data={"baseline": "qwen3-4b-thinking-2507", "backend": "vllm-ascend"},
    )
    body = upload.read()
    upload_headers = auth | {"Content-Type": upload.headers["Content-Type"]}

    def history(conn: http.client.HTTPConnection, i: int) -> None:
        model = models[i % len(models)]
        request(conn, "GET", f"/api/v1/runs?model={model}&task=gsm8k&limit=50", None, auth)

    return {
        "history": history,
        "latest 50": lambda conn, i: request(conn, "GET", "/api/v1/runs?limit=50", None, auth) and None,
        "run by id": lambda conn, i: request(conn, "GET", f"/api/v1/runs/{ids[i % len(ids)]}", None, auth) and None,
        "store a run": lambda conn, i: request(conn, "POST", "/api/v1/runs/import", body, upload_headers) and None,
    }


def mlflow_calls(experiment: str, ids: list[str], models: list[str]) -> dict[str, Call]:
    headers = {"Content-Type": "application/json"}
    api = "/api/2.0/mlflow"

    def search(conn: http.client.HTTPConnection, filter_: str) -> None:
        query = {"experiment_ids": [experiment], "filter": filter_, "max_results": 50, "order_by": ["start_time DESC"]}
        request(conn, "POST", f"{api}/runs/search", json.dumps(query).encode(), headers)

    def store(conn: http.client.HTTPConnection, i: int) -> None:
        now = int(time.time() * 1000)
        created = request(conn, "POST", f"{api}/runs/create", json.dumps({
            "experiment_id": experiment, "start_time": now, "run_name": f"stored-{i}",
            "tags": [{"key": "verdict", "value": "pass"}],
        }).encode(), headers)  # fmt: skip
        run_id = json.loads(created)["run"]["info"]["run_id"]
        params = {"model": STORED_MODEL, "backend": "vllm-ascend", "task": "gsm8k", "num_fewshot": "5"}
        metrics = {"exact_match.strict-match": 0.70, "exact_match.flexible-extract": 0.71}
        request(conn, "POST", f"{api}/runs/log-batch", json.dumps({
            "run_id": run_id,
            "params": [{"key": k, "value": v} for k, v in params.items()],
            "metrics": [{"key": k, "value": v, "timestamp": now, "step": 0} for k, v in metrics.items()],
        }).encode(), headers)  # fmt: skip
        done = {"run_id": run_id, "status": "FINISHED", "end_time": now}
        request(conn, "POST", f"{api}/runs/update", json.dumps(done).encode(), headers)

    return {
        "history": lambda conn, i: search(
            conn, f"params.model = '{models[i % len(models)]}' and params.task = 'gsm8k'"
        ),
        "latest 50": lambda conn, i: search(conn, ""),
        "run by id": lambda conn, i: (
            request(conn, "GET", f"{api}/runs/get?run_id={ids[i % len(ids)]}", None, {}) and None
        ),
        "store a run": store,
    }


# ---- measuring ----


def measure(port: int, call: Call, clients: int, requests: int, offset: int) -> list[float]:
    """`clients` threads, each on its own connection, start together and make `requests` calls each."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(k: int) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            call(conn, offset + k)  # the connection is open and warm before the clock starts
            mine = []
            start.wait()
            for n in range(requests):
                began = time.perf_counter()
                call(conn, offset + k * requests + n)
                mine.append(time.perf_counter() - began)
            conn.close()
        except BaseException as exc:  # a failed request voids the figure: said in the main thread, not lost
            start.abort()
            with lock:
                errors.append(exc)
            return
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} of {clients} clients failed on port {port}: {errors[0]!r}")
    return latencies


def measure_twice(what: str, port: int, call: Call, clients: int, requests: int, offset: int) -> list[float]:
    """measure(), and once more if a request failed, said on the output: a cold server may drop a connection
    (gunicorn restarts a worker), and MLflow answered a search at 8 clients on Postgres with a 500 once."""
    try:
        return measure(port, call, clients, requests, offset)
    except RuntimeError as exc:
        print(f"  {what}: {exc}; measured again", flush=True)
        return measure(port, call, clients, requests, offset + 10_000)


def check_same_answers(gate_port: int, gate_token: str, mlflow_port: int, experiment: str, model: str) -> None:
    """Both servers answer the history and the latest 50 with the same number of runs (else the race is unfair)."""
    gate = httpx.Client(base_url=f"http://127.0.0.1:{gate_port}", headers={"Authorization": f"Bearer {gate_token}"})
    peer = f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/runs/search"
    for params, filter_ in (
        ({"model": model, "task": "gsm8k", "limit": 50}, f"params.model = '{model}' and params.task = 'gsm8k'"),
        ({"limit": 50}, ""),
    ):
        ours = len(gate.get("/api/v1/runs", params=params).json()["runs"])
        query = {"experiment_ids": [experiment], "filter": filter_, "max_results": 50}
        theirs = len(httpx.post(peer, json=query).json()["runs"])
        if ours != theirs or not ours:
            raise SystemExit(f"the servers answer differently ({ours} runs against {theirs}): the comparison is void")


def run(kind: str, args: argparse.Namespace, workdir: Path) -> dict[tuple[str, int], list[float]]:
    runs = seed_runs(args.runs)
    models = sorted({r.model for r in runs})
    picks = random.Random(1).sample(runs, min(len(runs), 2000))
    ratios: dict[tuple[str, int], list[float]] = {}
    with fresh_database(kind, workdir) as url, mlflow_store(kind, workdir) as store_uri:
        started = time.perf_counter()
        seed(url, runs)
        gate_token = token(url, "bench", "submit")
        seeded_gate = time.perf_counter() - started
        experiment, mlflow_ids = seed_mlflow(args.mlflow_python, store_uri, runs, workdir)
        print(f"\n{kind}: {len(runs)} runs seeded (gate {seeded_gate:.0f} s, MLflow's client "
              f"{time.perf_counter() - started - seeded_gate:.0f} s)")  # fmt: skip
        with (
            gate_server(url, workdir / f"gate-{kind}.log", workers=args.gate_workers) as base,
            mlflow_server(args.mlflow_python.parent / "mlflow", store_uri, workdir) as mlflow_port,
        ):
            gate_port = port_of(base)
            check_same_answers(gate_port, gate_token, mlflow_port, experiment, models[7])
            servers = {
                "gate": (gate_port, gate_calls(gate_token, [r.id for r in picks], models)),
                "mlflow": (mlflow_port, mlflow_calls(experiment, [mlflow_ids[r.id] for r in picks], models)),
            }
            for name, (port, calls) in servers.items():  # warm-up: every process, thread and cache of both
                for operation in args.operation:
                    warm_up = f"warm-up of {name} {operation}"
                    measure_twice(warm_up, port, calls[operation], max(args.clients), 5, offset=50_000)
            for round_ in range(args.rounds):
                order = ["gate", "mlflow"] if round_ % 2 == 0 else ["mlflow", "gate"]
                for clients in args.clients:
                    for operation in args.operation:
                        medians = {}
                        for name in order:
                            port, calls = servers[name]
                            offset = round_ * 1000 + clients * 100
                            latencies = measure_twice(name, port, calls[operation], clients, args.requests, offset)
                            medians[name] = statistics.median(latencies)
                        ratios.setdefault((operation, clients), []).append(medians["mlflow"] / medians["gate"])
                        print(f"  round {round_ + 1} {clients} client(s) {operation:12s} gate "
                              f"{medians['gate'] * 1000:7.2f} ms  MLflow {medians['mlflow'] * 1000:7.2f} ms  "
                              f"{medians['mlflow'] / medians['gate']:5.1f}x", flush=True)  # fmt: skip
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40, help="per client, per operation and round")
    parser.add_argument("--clients", type=int, action="append", help="concurrent clients (default: 1 and 8)")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--operation", action="append", choices=OPERATIONS, help="(default: all four)")
    parser.add_argument("--gate-workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--mlflow-python", type=Path, default=ROOT / ".venv-mlflow" / "bin" / "python")
    args = parser.parse_args()
    args.clients = args.clients or [1, 8]
    args.operation = args.operation or list(OPERATIONS)
    if not args.mlflow_python.exists():
        raise SystemExit(f"no MLflow environment at {args.mlflow_python}: run `make .venv-mlflow/.installed`")
    print(f"$ {' '.join(sys.argv)}")
    print(f"gate: {args.gate_workers} API processes; MLflow: gunicorn, 2 processes x 4 threads")
    summary = []
    for kind in args.db or ["sqlite", "postgres"]:
        with tempfile.TemporaryDirectory() as tmp:
            for (operation, clients), values in run(kind, args, Path(tmp)).items():
                summary.append((kind, operation, clients, statistics.median(values), min(values)))
    print("\nMLflow's median latency over gate's (x faster), median of the rounds, worst round:")
    for kind, operation, clients, median, worst in summary:
        print(f"  {kind:8s} {operation:12s} {clients} client(s)  {median:6.1f}x  (worst {worst:5.1f}x)")


if __name__ == "__main__":
    main()
