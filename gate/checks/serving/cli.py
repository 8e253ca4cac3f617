"""`gate bench`: queue a serving benchmark, follow it, print the card's table and exit with the verdict.

Exit codes as `gate submit` (gate.cli.gating): 0 pass, 1 fail, 2 not comparable, not gated or an error, 3 timeout.
"""

from __future__ import annotations

import statistics
from typing import Annotated, Any
from xml.etree import ElementTree

import httpx
import typer

from gate.checks.serving import judge
from gate.cli import gating
from gate.cli.admin import fail


def _mean(rounds: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(r[key] for r in rounds)


def table(run: dict[str, Any], serving: dict[str, Any] | None, server: str) -> str:
    """The run's line, then per level: aggregate and per-request throughput, latency, TPOT, TTFT, failed."""
    lines = [gating.verdict_table(run, server)]
    if serving is None:
        return lines[0]
    lines.append(
        f"  {'concurrency':>11} {'out tok/s':>10} {'req tok/s':>10} {'latency s':>10} {'TPOT ms':>8} "
        f"{'TTFT ms':>8} {'failed':>6}"
    )
    for level in serving["report"]["levels"]:
        r = level["rounds"]
        lines.append(
            f"  {level['concurrency']:>11} {_mean(r, 'output_throughput'):>10.2f} "
            f"{_mean(r, 'per_request_decode_tok_s'):>10.2f} {_mean(r, 'mean_e2el_ms') / 1000:>10.3f} "
            f"{_mean(r, 'mean_tpot_ms'):>8.2f} {_mean(r, 'mean_ttft_ms'):>8.1f} {sum(x['failed'] for x in r):>6}"
        )
    lines += [f"  {reason}" for reason in serving["reasons"]]
    return "\n".join(lines)


def junit(run: dict[str, Any], serving: dict[str, Any] | None) -> bytes:
    """One test case per concurrency level; a failing one carries the judge's sentences about it."""
    if serving is None:  # no figures: the run's own case says why
        return gating.junit(run)
    levels = serving["report"]["levels"]
    suite = ElementTree.Element("testsuite", name=f"gate bench {run['model']}", tests=str(len(levels)))
    failures = skipped = 0
    for level in levels:
        name = f"c={level['concurrency']}"
        case = ElementTree.SubElement(suite, "testcase", classname=f"gate.bench.{run['model']}", name=name)
        said = [r for r in serving["reasons"] if r.startswith(f"{name}:")]
        failing = serving["outcome"] == "fail" and [r for r in said if not r.endswith(judge.WITHIN_SPREAD)]
        if failing:
            failures += 1
            ElementTree.SubElement(case, "failure", message=failing[0]).text = "\n".join(said)
        elif serving["outcome"] in ("not_comparable", None):
            skipped += 1
            ElementTree.SubElement(case, "skipped", message="; ".join(serving["reasons"]))
        else:
            r = level["rounds"]
            ElementTree.SubElement(case, "system-out").text = (
                f"output throughput {_mean(r, 'output_throughput'):.2f} tok/s, mean TPOT "
                f"{_mean(r, 'mean_tpot_ms'):.2f} ms" + ("".join(f"\n{s}" for s in said))
            )
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    root = ElementTree.Element("testsuites")
    root.append(suite)
    return ElementTree.tostring(root, encoding="utf-8")


def bench(
    server: gating.Server,
    token: gating.Token,
    model: Annotated[str, typer.Option(metavar="MODEL", help="the model, as its worker sees it")],
    backend: Annotated[str, typer.Option(metavar="BACKEND", help="vllm, vllm-ascend or openai")] = "vllm",
    device: Annotated[str | None, typer.Option(metavar="DEVICE", help="cpu, cuda[:ids], npu[:ids]")] = None,
    engine_arg: Annotated[
        list[str] | None, typer.Option(metavar="NAME=VALUE", help="a `vllm serve` argument, repeatable")
    ] = None,
    profile: Annotated[str, typer.Option(metavar="PROFILE", help="card or sweep")] = "card",
    rounds: Annotated[int | None, typer.Option(metavar="N", help="rounds per level (default 3)")] = None,
    num_prompts: Annotated[int | None, typer.Option(metavar="N", help="prompts per round")] = None,
    concurrency: Annotated[list[int] | None, typer.Option(metavar="N", help="a sweep level, repeatable")] = None,
    reference_run: Annotated[int | None, typer.Option(metavar="RUN", help="the serving run judged against")] = None,
    baseline: Annotated[
        str | None, typer.Option(metavar="BASELINE", help="baseline whose checks.serving apply")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(metavar="LABEL", help="worker label the run needs")] = None,
    idempotency_key: Annotated[str | None, typer.Option(metavar="KEY", help="repeat-safe key")] = None,
    wait: Annotated[bool, typer.Option(help="follow the run and exit with its verdict")] = False,
    timeout: Annotated[float, typer.Option(metavar="TIMEOUT", help="seconds to wait before exiting 3")] = 6 * 3600.0,
    junit_path: gating.Junit = None,
    json_path: gating.JsonOut = None,
) -> None:
    """Queue a serving benchmark; with --wait, exit 0 on pass, 1 on fail, 2 on not comparable, not gated or error,
    3 on timeout."""
    body: dict[str, Any] = {
        "model": model,
        "backend": backend,
        "device": device,
        "engine_args": gating.engine_args(engine_arg) or None,
        "profile": profile,
        "rounds": rounds,
        "num_prompts": num_prompts,
        "concurrencies": concurrency or None,
        "reference_run": reference_run,
        "baseline": baseline,
        "labels": label or [],
        "ci": gating.ci_context() or None,
        "idempotency_key": idempotency_key,
    }
    body = {k: v for k, v in body.items() if v is not None}
    with httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        try:
            run = gating.checked(client.post("/api/v1/serving/runs", json=body))
            typer.echo(f"queued run {run['id']}: {server.rstrip('/')}/runs/{run['id']}", err=True)
            if not wait:
                typer.echo(run["id"])
                return
            finished = gating.wait_for(client, run["id"], timeout)
            serving = None
            if finished is not None and finished["status"] == "succeeded":
                serving = gating.checked(client.get(f"/api/v1/runs/{run['id']}/serving"))
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach {server}: {exc}", gating.EXIT_OTHER) from None
    if finished is None:
        typer.echo(f"timeout: run {run['id']} did not finish within {timeout:g} s", err=True)
        raise typer.Exit(gating.EXIT_TIMEOUT)
    code = gating.emit(
        finished, table(finished, serving, server), junit(finished, serving), junit_path, json_path, serving=serving
    )
    raise typer.Exit(code)


commands = {"bench": bench}
