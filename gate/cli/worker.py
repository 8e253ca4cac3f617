"""`gate worker`: the agent for an accelerator machine. HTTP only: no database credentials on workers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from gate.runs.options import BACKENDS

BACKEND_HELP = f"one of {', '.join(BACKENDS)}"


def _devices(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise typer.BadParameter("devices are comma-separated integers, e.g. 0,1") from None


def _local_data(values: list[str]) -> dict[str, Path]:
    data = {}
    for value in values:
        task, sep, path = value.partition("=")
        if not sep:
            raise typer.BadParameter(f"--local-data takes TASK=DIR, got {value!r}")
        data[task] = Path(path).expanduser().resolve()
    return data


def worker(
    server: Annotated[str, typer.Option(metavar="SERVER", help="gate server URL", envvar="GATE_SERVER")],
    token: Annotated[str, typer.Option(metavar="TOKEN", help="a token with the worker scope", envvar="GATE_TOKEN")],
    backend: Annotated[str, typer.Option(metavar="BACKEND", help=BACKEND_HELP)],
    label: Annotated[
        list[str] | None, typer.Option(metavar="LABEL", help="a label runs may ask for; repeat for several")
    ] = None,
    devices: Annotated[str | None, typer.Option(metavar="DEVICES", help="accelerator indices, e.g. 0,1")] = None,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="worker name (default: host-backend)")] = None,
    local_data: Annotated[
        list[str] | None,
        typer.Option(
            help="TASK=DIR: evaluate TASK on local files (air-gapped), e.g. gsm8k=/data/gsm8k", metavar="LOCAL_DATA"
        ),
    ] = None,
    dataset_mirror: Annotated[
        Path | None,
        typer.Option(
            help="evaluate every task from local datasets: DIR/ORG/NAME as `hf download --repo-type dataset ORG/NAME "
            "--local-dir DIR/ORG/NAME` writes it (air-gapped)",
            metavar="DIR",
        ),
    ] = None,
    work_dir: Annotated[Path, typer.Option(metavar="WORK_DIR", help="outputs, logs and response caches")] = Path(
        ".gate-worker"
    ),
    openai_base_url: Annotated[
        str | None, typer.Option(help="backend openai: the server, e.g. http://h:8000/v1", metavar="OPENAI_BASE_URL")
    ] = None,
    openai_model: Annotated[
        str | None, typer.Option(metavar="OPENAI_MODEL", help="backend openai: the served model name")
    ] = None,
    openai_tokenizer: Annotated[
        str | None, typer.Option(metavar="OPENAI_TOKENIZER", help="backend openai: tokenizer path or id")
    ] = None,
    allow_trust_remote_code: Annotated[bool, typer.Option(help="let admin-approved runs load remote code")] = False,
    heartbeat_s: Annotated[
        float,
        typer.Option(
            help="seconds between lease renewals (at most a third of the server's lease)", metavar="HEARTBEAT_S"
        ),
    ] = 30.0,
    fence_s: Annotated[
        float,
        typer.Option(
            help="stop the evaluation after this long without a renewal (at most 0.8 of the lease)", metavar="FENCE_S"
        ),
    ] = 240.0,
    cancel_grace_s: Annotated[
        float, typer.Option(metavar="CANCEL_GRACE_S", help="SIGTERM-to-SIGKILL grace when stopping lm-eval")
    ] = 10.0,
    time_limit_s: Annotated[float, typer.Option(metavar="TIME_LIMIT_S", help="default per-run time limit")] = 6
    * 3600.0,
    claim_wait_s: Annotated[
        float,
        typer.Option(
            min=0, max=60, help="seconds a claim waits on the server for a queued run", metavar="CLAIM_WAIT_S"
        ),
    ] = 20.0,
    max_runs: Annotated[int | None, typer.Option(min=1, metavar="MAX_RUNS", help="exit after this many runs")] = None,
    once: Annotated[
        bool, typer.Option("--once", help="wait for one run, execute it and exit: --max-runs 1 (for batch jobs)")
    ] = False,
    exit_when_idle_s: Annotated[
        float | None,
        typer.Option(
            "--exit-when-idle",
            min=0,
            metavar="S",
            help="exit once nothing was claimed for S seconds, stopping the warm engine (for batch jobs)",
        ),
    ] = None,
    warm_engine: Annotated[
        bool,
        typer.Option(help="backends vllm, vllm-ascend: keep one vLLM server per model and engine arguments warm"),
    ] = False,
    warm_idle_s: Annotated[
        float, typer.Option(min=0, metavar="WARM_IDLE_S", help="stop the warm engine after this long without a run")
    ] = 600.0,
) -> None:
    """Claim runs from a gate server and execute them with lm-eval."""
    from gate.checks.accuracy import datasets
    from gate.worker import agent
    from gate.worker.client import GateClient, ServerRefused
    from gate.worker.config import WorkerConfig

    if once and max_runs not in (None, 1):
        raise typer.BadParameter("it means --max-runs 1; give one of the two", param_hint="--once")
    if backend not in BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}: {BACKEND_HELP}", param_hint="--backend")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request (renewals, long polls) drowns the rest
    work_dir = work_dir.resolve()
    include_path, extra_env = None, {}
    sandboxed = "sandboxed" in (label or ())  # the label that lets it run model-written code, in gate.worker.sandbox
    if local_data and dataset_mirror:
        raise typer.BadParameter("give --local-data or --dataset-mirror, not both: put the local files into the mirror")
    if dataset_mirror is not None and not dataset_mirror.is_dir():
        raise typer.BadParameter(f"{dataset_mirror} is not a folder", param_hint="--dataset-mirror")
    if local_data or sandboxed:
        try:
            entries = work_dir / "local-data"  # the local files as entries of a dataset mirror
            data = _local_data(local_data or [])
            prepared = datasets.write_overrides(data, work_dir / "tasks", entries, sandboxed)
            include_path = prepared.include_path
            extra_env["HF_DATASETS_CACHE"] = str(work_dir / "datasets" / prepared.content)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    config = WorkerConfig(
        backend=backend,
        labels=tuple(label or ()),
        devices=_devices(devices),
        work_dir=work_dir,
        include_path=include_path,
        dataset_mirror=None if dataset_mirror is None else dataset_mirror.resolve(),
        allow_trust_remote_code=allow_trust_remote_code,
        openai_base_url=openai_base_url,
        openai_model=openai_model,
        openai_tokenizer=openai_tokenizer,
        warm_engine=warm_engine,
        warm_idle_s=warm_idle_s,
        extra_env=extra_env,
    )
    timing = agent.Timing(
        heartbeat_s=heartbeat_s,
        fence_s=fence_s,
        cancel_grace_s=cancel_grace_s,
        time_limit_s=time_limit_s,
        claim_wait_s=claim_wait_s,
    )
    client = GateClient(server, token)
    the_agent = agent.Agent(client, config, timing, name=name)
    the_agent.install_signal_handlers()
    try:
        the_agent.serve(max_runs=1 if once else max_runs, exit_when_idle_s=exit_when_idle_s)
    except ServerRefused as exc:  # a wrong token or a worker the server will not take: not worth a traceback
        typer.echo(f"error: the server refused this worker: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        client.close()
