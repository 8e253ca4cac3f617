"""`gate qualify`: every check of a plan for one model, one verdict for CI.

Exit codes as `gate submit`: 0 pass, 1 fail, 2 not comparable, a run that could not finish, or an error, 3 timeout.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any
from xml.etree import ElementTree

import httpx
import typer

from gate.cli.admin import fail
from gate.cli.gating import (
    EXIT_FAIL,
    EXIT_OTHER,
    EXIT_PASS,
    EXIT_TIMEOUT,
    POLL_S,
    JsonOut,
    Junit,
    Server,
    Token,
    ci_context,
    engine_args,
)
from gate.cli.gating import checked as answer

EXIT_CODES = {"pass": EXIT_PASS, "fail": EXIT_FAIL}
CASE_STATES = {"fail": "failure", "not_comparable": "skipped"}


def exit_code(q: dict[str, Any]) -> int:
    return EXIT_CODES.get(q.get("verdict") or "", EXIT_OTHER)


def words(value: str | None) -> str:
    return (value or "none").replace("_", " ")


def table(q: dict[str, Any], server: str) -> str:
    root = server.rstrip("/")
    width = max([10, *(len(c["name"]) for c in q["checks"])])  # accuracy:minerva_math and the like
    lines = [
        f"qualification {q['id']} {q['model']} on {q['backend']}: {q['status']}, verdict {words(q['verdict'])}"
        f"  ({root}/qualifications/{q['id']})",
        f"  {'check':<{width}} {'run':>6} {'status':<10} {'gated':<6} verdict",
    ]
    for c in q["checks"]:
        run = c["run"]
        judged = words(run["verdict"]) if run["verdict"] else "measured, not gated"
        lines.append(
            f"  {c['name']:<{width}} {run['id']:>6} {run['status']:<10} {'yes' if c['gated'] else 'no':<6} "
            f"{judged if run['status'] == 'succeeded' else '-'}"
        )
        if run["status"] == "failed":
            lines.append(f"    the run did not finish: {run['failure_reason']}")
    lines += [f"  {reason}" for reason in q["reasons"]]
    return "\n".join(lines)


def junit(q: dict[str, Any]) -> bytes:
    """One test case per check: a failure for a failed gate, an error for a run that did not finish, skipped for
    not comparable."""
    suite = ElementTree.Element("testsuite", name=f"gate qualification {q['model']}", tests=str(len(q["checks"])))
    counts = {"failure": 0, "error": 0, "skipped": 0}
    for c in q["checks"]:
        run = c["run"]
        case = ElementTree.SubElement(suite, "testcase", classname=f"gate.{q['model']}", name=c["name"])
        url = f"run {run['id']} ({run['kind']})"
        if run["status"] in ("failed", "cancelled"):
            state, message = "error", f"{url} {run['status']}: {run['failure_reason'] or 'no verdict'}"
        elif run["status"] != "succeeded":
            state, message = "error", f"{url} is {run['status']}: {c['waiting'] or 'not finished'}"
        elif c["gated"] and run["verdict"] in CASE_STATES:
            state, message = CASE_STATES[run["verdict"]], f"{url}: {words(run['verdict'])}"
        else:
            ElementTree.SubElement(case, "system-out").text = f"{url}: {words(run['verdict'] or 'measured')}"
            continue
        counts[state] += 1
        ElementTree.SubElement(case, state, message=message)
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    root = ElementTree.Element("testsuites")
    root.append(suite)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8")


def follow(client: httpx.Client, qualification_id: int, timeout_s: float) -> dict[str, Any] | None:
    """Follow a qualification until it is finished, each change of a check on stderr. None on timeout."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        q = answer(client.get(f"/api/v1/qualifications/{qualification_id}"))
        seen = [(c["name"], c["run"]["status"], c["waiting"]) for c in q["checks"]]
        if seen != last:
            typer.echo(
                f"qualification {qualification_id}: {q['status']}; "
                + ", ".join(f"{name} {status}" + (f" ({why})" if why else "") for name, status, why in seen),
                err=True,
            )
            last = seen
        if q["status"] == "finished":
            return q
        time.sleep(POLL_S)
    return None


def _json_option(raw: str | None, name: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise fail(f"--{name} is not valid JSON: {exc}", EXIT_OTHER) from None
    if not isinstance(value, dict):
        raise fail(f"--{name} must be a JSON object", EXIT_OTHER)
    return value


def accuracy_settings(raw: str | None, tasks: list[str] | None) -> dict[str, Any] | None:
    """--accuracy's options with --task's benchmarks (which win over a "tasks" in the JSON)."""
    options = _json_option(raw, "accuracy")
    if not tasks:
        return options
    return {**(options or {}), "tasks": tasks}


def qualify(
    server: Server,
    token: Token,
    model: Annotated[str, typer.Option(metavar="MODEL", help="model reference: a path on the workers, or a hub id")],
    backend: Annotated[str, typer.Option(metavar="BACKEND", help="vllm, vllm-ascend, hf or openai")] = "vllm",
    baseline: Annotated[str | None, typer.Option(metavar="BASELINE", help="baseline name")] = None,
    plan: Annotated[str, typer.Option(metavar="PLAN", help="the plan of checks")] = "card",
    check: Annotated[
        list[str] | None, typer.Option(metavar="CHECK", help="run only this check of the plan; repeat for several")
    ] = None,
    reference_run: Annotated[
        int | None, typer.Option(metavar="RUN", help="the serving run the benchmark is judged against")
    ] = None,
    device: Annotated[str | None, typer.Option(metavar="DEVICE", help="e.g. npu:0, cuda:0, cpu")] = None,
    dtype: Annotated[str | None, typer.Option(metavar="DTYPE", help="e.g. bfloat16")] = None,
    engine_arg: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="a vLLM engine argument; repeat for several")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(metavar="LABEL", help="worker label the runs need")] = None,
    accuracy: Annotated[
        str | None, typer.Option(metavar="JSON", help="the accuracy check's options, e.g. '{\"limit\": 8}'")
    ] = None,
    task: Annotated[
        list[str] | None,
        typer.Option(metavar="TASK", help="an accuracy benchmark (default gsm8k); repeat for several, one run each"),
    ] = None,
    alignment: Annotated[str | None, typer.Option(metavar="JSON", help="the alignment check's settings")] = None,
    serving: Annotated[str | None, typer.Option(metavar="JSON", help="the serving check's settings")] = None,
    smoke: Annotated[str | None, typer.Option(metavar="JSON", help="the smoke check's settings")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(metavar="IDEMPOTENCY_KEY", help="repeat-safe key, e.g. the pipeline id")
    ] = None,
    wait: Annotated[bool, typer.Option(help="follow the qualification and exit with its verdict")] = False,
    timeout: Annotated[float, typer.Option(metavar="TIMEOUT", help="seconds to wait before exiting 3")] = 12 * 3600.0,
    junit_path: Junit = None,
    json_path: JsonOut = None,
) -> None:
    """Qualify a port: queue every check of a plan; with --wait, exit 0 on pass, 1 on fail, 2 on not comparable,
    a run that could not finish or an error, 3 on timeout."""
    body: dict[str, Any] = {
        "model": model,
        "backend": backend,
        "plan": plan,
        "checks": check,
        "baseline": baseline,
        "reference_run": reference_run,
        "device": device,
        "dtype": dtype,
        "engine_args": engine_args(engine_arg) or None,
        "labels": label or [],
        "ci": ci_context() or None,
        "accuracy": accuracy_settings(accuracy, task),
        "alignment": _json_option(alignment, "alignment"),
        "serving": _json_option(serving, "serving"),
        "smoke": _json_option(smoke, "smoke"),
    }
    body = {k: v for k, v in body.items() if v is not None}
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
    root = server.rstrip("/")
    with httpx.Client(base_url=root, headers=headers, timeout=60) as client:
        try:
            q = answer(client.post("/api/v1/qualifications", json=body))
            typer.echo(f"queued qualification {q['id']}: {root}/qualifications/{q['id']}", err=True)
            if not wait:
                typer.echo(q["id"])
                return
            finished = follow(client, q["id"], timeout)
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach {server}: {exc}", EXIT_OTHER) from None
    if finished is None:
        typer.echo(f"timeout: qualification {q['id']} did not finish within {timeout:g} s", err=True)
        raise typer.Exit(EXIT_TIMEOUT)
    typer.echo(table(finished, server))
    if junit_path:
        junit_path.write_bytes(junit(finished))
    if json_path:
        json_path.write_text(json.dumps({"qualification": finished, "exit_code": exit_code(finished)}, indent=2))
    raise typer.Exit(exit_code(finished))
