"""Seed an MLflow tracking store with the peer benchmark's runs, through MLflow's official client.

Runs under the MLflow virtual environment (not gate's): `.venv-mlflow/bin/python bench/mlflow_seed.py URI RUNS.jsonl`.
Prints the experiment id and then one `gate_id mlflow_run_id` line per run.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

EXPERIMENT = "gate-peer"


def main() -> None:
    uri, path = sys.argv[1], sys.argv[2]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(EXPERIMENT)
    with open(path, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]

    def store(record: dict) -> str:
        started, ended = record["created_ms"], record["finished_ms"]
        run = client.create_run(
            experiment, start_time=started, tags={"verdict": record["verdict"]}, run_name=f"run-{record['id']}"
        )
        run_id = run.info.run_id
        params = {"model": record["model"], "backend": "vllm-ascend", "task": "gsm8k", "num_fewshot": "5"}
        metrics = {
            "exact_match.strict-match": record["strict"],
            "exact_match.flexible-extract": record["flexible"],
            "exact_match_stderr.strict-match": 0.0126,
        }
        client.log_batch(
            run_id,
            metrics=[Metric(name, value, ended, 0) for name, value in metrics.items()],
            params=[Param(name, value) for name, value in params.items()],
            tags=[RunTag("origin", "queue")],
        )
        client.set_terminated(run_id, "FINISHED", end_time=ended)
        return run_id

    with ThreadPoolExecutor(4) as pool:  # the store's own engine pool serialises SQLite's writes
        run_ids = list(pool.map(store, records))
    print(experiment)
    for record, run_id in zip(records, run_ids, strict=True):
        print(record["id"], run_id)


if __name__ == "__main__":
    main()
