"""`gate submit` and `gate import`: the one-line gate for CI pipelines.

Exit codes: 0 pass, 1 fail, 2 not comparable or an error (including a run that could not finish), 3 timeout.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any
from xml.etree import ElementTree

import httpx
import typer

from gate.cli.admin import fail

EXIT_PASS, EXIT_FAIL, EXIT_OTHER, EXIT_TIMEOUT = 0, 1, 2, 3
POLL_S = 2.0
# CI context read from the environment of the common CI systems
CI_ENV = {
    "repository": ("GITHUB_REPOSITORY", "CI_PROJECT_PATH", "BUILDKITE_REPO"),
    "commit": ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT"),
    "branch": ("GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BUILDKITE_BRANCH"),
    "pipeline_url": ("CI_PIPELINE_URL", "BUILDKITE_BUILD_URL"),
}

Server = Annotated[str, typer.Option(help="gate server URL", envvar="GATE_SERVER", metavar="URL")]
Token = Annotated[str, typer.Option(help="a token with the submit scope", envvar="GATE_TOKEN", metavar="TOKEN")]
Junit = Annotated[
    Path | None, typer.Option("--junit", help="write a JUnit XML report (one test case per benchmark)", metavar="FILE")
]
JsonOut = Annotated[Path | None, typer.Option("--json", help="write the machine-readable verdict", metavar="FILE")]


def ci_context() -> dict[str, str]:
    context = {key: next((os.environ[n] for n in names if os.environ.get(n)), "") for key, names in CI_ENV.items()}
    if os.environ.get("GITHUB_SERVER_URL") and os.environ.get("GITHUB_RUN_ID"):
        context["pipeline_url"] = (
            f"{os.environ['GITHUB_SERVER_URL']}/{os.environ.get('GITHUB_REPOSITORY')}"
            f"/actions/runs/{os.environ['GITHUB_RUN_ID']}"
        )
    return {k: v for k, v in context.items() if v}


def engine_args(values: list[str] | None) -> dict[str, Any]:
    """--engine-arg NAME=VALUE, repeated; a value is read as JSON where it parses (4096, true), else kept as text."""
    found: dict[str, Any] = {}
    for item in values or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise fail(f"--engine-arg needs NAME=VALUE, not {item!r}", EXIT_OTHER)
        try:
            found[name] = json.loads(raw)
        except json.JSONDecodeError:
            found[name] = raw
    return found


def checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise fail(f"the server refused the request (HTTP {response.status_code}): {detail}", EXIT_OTHER)
    return response.json()


def exit_code(run: dict[str, Any]) -> int:
    return {"pass": EXIT_PASS, "fail": EXIT_FAIL}.get(run.get("verdict") or "", EXIT_OTHER)


def verdict_table(run: dict[str, Any], server: str) -> str:
    lines = [
        f"run {run['id']} {run['model']} on {run['backend']}: {run['status']}, verdict "
        f"{(run.get('verdict') or 'none').replace('_', ' ')}  ({server.rstrip('/')}/runs/{run['id']})"
    ]
    if run.get("model_fingerprint"):
        lines.append(f"  model fingerprint {run['model_fingerprint']}")
    if run["status"] == "failed":
        lines.append(f"  the run did not finish ({run.get('failure_kind')}): {run.get('failure_reason')}")
    if run.get("verdict_reason"):
        lines.append(f"  not comparable: {run['verdict_reason']}")
    if run.get("verdicts"):
        lines.append(f"  {'benchmark':<12} {'score %':>8} {'baseline %':>11} {'delta pp':>9} {'band':>8}  verdict")
    for v in run.get("verdicts", []):
        d = v["details"]
        band = f"{'±' if d['two_sided'] else '-'}{d['tolerance_pp']:g}"
        lines.append(
            f"  {v['task']:<12} {d['candidate'] * 100:8.2f} {d['baseline'] * 100:11.2f} "
            f"{v['delta_pp']:+9.2f} {band:>8}  {v['outcome'].replace('_', ' ')}"
        )
        # a fail's reasons say why it was decided early (a sharded run stopped), a not comparable's why no verdict
        said = "not comparable" if v["outcome"] == "not_comparable" else "decided early"
        lines += [f"    {said}: {reason}" for reason in d["reasons"]]
    if run.get("not_gated_tasks"):
        lines.append(f"  not gated (the baseline has no entry): {', '.join(run['not_gated_tasks'])}")
    return "\n".join(lines)


def junit(run: dict[str, Any]) -> bytes:
    verdicts = run.get("verdicts", [])
    suite = ElementTree.Element("testsuite", name=f"gate {run['model']}", tests=str(max(len(verdicts), 1)))
    if run.get("model_fingerprint"):  # properties come first in a JUnit suite
        properties = ElementTree.SubElement(suite, "properties")
        ElementTree.SubElement(properties, "property", name="model_fingerprint", value=run["model_fingerprint"])
    failures = skipped = 0
    for v in verdicts:
        d = v["details"]
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"gate.{run['model']}", name=f"{v['task']} {d['metric']}"
        )
        summary = (
            f"{d['candidate'] * 100:.2f} % against {d['baseline'] * 100:.2f} %: delta {v['delta_pp']:+.2f} pp, "
            f"gate {'±' if d['two_sided'] else '-'}{d['tolerance_pp']:g} pp"
        )
        if v["outcome"] == "fail":
            failures += 1
            message = "; ".join([summary, *d["reasons"]])  # a stopped run: the answered questions' score, and why
            ElementTree.SubElement(case, "failure", message=message).text = "\n".join(d["notes"])
        elif v["outcome"] == "not_comparable":
            skipped += 1
            ElementTree.SubElement(case, "skipped", message="not comparable: " + "; ".join(d["reasons"]))
        else:
            ElementTree.SubElement(case, "system-out").text = summary
    if not verdicts and run.get("verdict_reason"):  # finished, but the baseline gates none of its tasks
        case = ElementTree.SubElement(suite, "testcase", classname=f"gate.{run['model']}", name="evaluation")
        ElementTree.SubElement(case, "skipped", message="not comparable: " + run["verdict_reason"])
        skipped += 1
    elif not verdicts:  # a run that could not finish, or no baseline: one erroring case says why
        case = ElementTree.SubElement(suite, "testcase", classname=f"gate.{run['model']}", name="evaluation")
        ElementTree.SubElement(case, "error", message=run.get("failure_reason") or f"no verdict (run {run['status']})")
        suite.set("errors", "1")
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    root = ElementTree.Element("testsuites")
    root.append(suite)
    return ElementTree.tostring(root, encoding="utf-8")


def report(run: dict[str, Any], server: str, junit_path: Path | None, json_path: Path | None) -> int:
    return emit(run, verdict_table(run, server), junit(run), junit_path, json_path)


def emit(
    run: dict[str, Any],
    table: str,
    junit_xml: bytes,
    junit_path: Path | None,
    json_path: Path | None,
    **extra: Any,
) -> int:
    """Print a finished run's table, write its JUnit and JSON files (extra keys join the JSON); its exit code."""
    typer.echo(table)
    if junit_path:
        junit_path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n' + junit_xml)
    if json_path:
        verdict = {"run": run, "model_fingerprint": run.get("model_fingerprint"), "exit_code": exit_code(run), **extra}
        json_path.write_text(json.dumps(verdict, indent=2))
    return exit_code(run)


def wait_for(client: httpx.Client, run_id: int, timeout_s: float) -> dict[str, Any] | None:
    """Follow a run to its end, printing progress on stderr. None on timeout."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        run = checked(client.get(f"/api/v1/runs/{run_id}"))
        progress = (run["status"], run["progress"]["done"], run["progress"]["total"], run["attempts"])
        if progress != last:
            done, total = run["progress"]["done"], run["progress"]["total"]
            typer.echo(
                f"run {run_id}: {run['status']}"
                + (f" {done}/{total}" if total else "")
                + (f" (attempt {run['attempts']})" if run["attempts"] > 1 else ""),
                err=True,
            )
            last = progress
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(POLL_S)
    return None


def submit(
    server: Server,
    token: Token,
    model: Annotated[
        str, typer.Option(metavar="MODEL", help="model reference: a path on the worker, a hub or ModelScope id")
    ],
    baseline: Annotated[str, typer.Option(metavar="BASELINE", help="baseline name, e.g. qwen3-4b-thinking-2507")],
    task: Annotated[
        list[str] | None, typer.Option(metavar="TASK", help="lm-eval task; repeat for several (default gsm8k)")
    ] = None,
    backend: Annotated[str, typer.Option(metavar="BACKEND", help="vllm, vllm-ascend, hf or openai")] = "vllm",
    label: Annotated[list[str] | None, typer.Option(metavar="LABEL", help="worker label the run needs")] = None,
    profile: Annotated[
        str | None, typer.Option(metavar="PROFILE", help="named option set, e.g. qwen3-thinking")
    ] = None,
    options: Annotated[
        str | None, typer.Option(metavar="OPTIONS", help="run options as JSON, e.g. '{\"num_fewshot\": 5}'")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(metavar="IDEMPOTENCY_KEY", help="repeat-safe key, e.g. the pipeline id")
    ] = None,
    wait: Annotated[bool, typer.Option(help="follow the run and exit with its verdict")] = False,
    timeout: Annotated[float, typer.Option(metavar="TIMEOUT", help="seconds to wait before exiting 3")] = 6 * 3600.0,
    junit_path: Junit = None,
    json_path: JsonOut = None,
) -> None:
    """Queue an evaluation; with --wait, exit 0 on pass, 1 on fail, 2 on not comparable or error, 3 on timeout."""
    try:
        run_options = json.loads(options) if options else {}
    except json.JSONDecodeError as exc:
        raise fail(f"--options is not valid JSON: {exc}", EXIT_OTHER) from None
    if profile:
        run_options["profile"] = profile
    body = {
        "model": model,
        "baseline": baseline,
        "tasks": task or ["gsm8k"],
        "backend": backend,
        "labels": label or [],
        "options": run_options,
        "ci": ci_context() or None,
    }
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=60) as client:
        try:
            run = checked(client.post("/api/v1/runs", json=body))
            typer.echo(f"queued run {run['id']}: {server.rstrip('/')}/runs/{run['id']}", err=True)
            if not wait:
                typer.echo(run["id"])
                return
            finished = wait_for(client, run["id"], timeout)
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach {server}: {exc}", EXIT_OTHER) from None
    if finished is None:
        typer.echo(f"timeout: run {run['id']} did not finish within {timeout:g} s", err=True)
        raise typer.Exit(EXIT_TIMEOUT)
    raise typer.Exit(report(finished, server, junit_path, json_path))


def model_fingerprint(model_dir: Path) -> str:
    """The fingerprint a worker would record for this folder."""
    try:
        from gate.worker import fingerprint, modelref
    except ImportError:  # blake3 comes with the worker extra
        raise fail("--model-dir needs the blake3 package: pip install 'gate[worker]' (or blake3)", EXIT_OTHER) from None
    try:
        return fingerprint.fingerprint(model_dir.resolve()).digest
    except (modelref.ModelUnavailable, OSError) as exc:
        raise fail(f"cannot fingerprint {model_dir}: {exc}", EXIT_OTHER) from None


def import_results(
    results: Annotated[
        Path, typer.Argument(help="lm-eval results_*.json", exists=True, dir_okay=False, metavar="RESULTS")
    ],
    server: Server,
    token: Token,
    baseline: Annotated[str, typer.Option(metavar="BASELINE", help="baseline name")],
    samples: Annotated[
        list[Path] | None, typer.Option(metavar="SAMPLES", help="lm-eval samples_<task>_*.jsonl; repeat")
    ] = None,
    model: Annotated[str | None, typer.Option(metavar="MODEL", help="model name (default: from the results)")] = None,
    backend: Annotated[str | None, typer.Option(metavar="BACKEND", help="backend (default: from the results)")] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="the model folder evaluated: its fingerprint is stored with the run",
            file_okay=False,
            metavar="MODEL_DIR",
        ),
    ] = None,
    junit_path: Junit = None,
    json_path: JsonOut = None,
) -> None:
    """Upload a run made by hand and exit with its verdict (0 pass, 1 fail, 2 not comparable or error)."""
    files = [("results", (results.name, results.read_bytes(), "application/json"))]
    files += [("samples", (p.name, p.read_bytes(), "application/x-ndjson")) for p in samples or []]
    form = {k: v for k, v in {"baseline": baseline, "model": model, "backend": backend}.items() if v}
    if model_dir is not None:
        form["model_fingerprint"] = model_fingerprint(model_dir)
    if context := ci_context():
        form["ci"] = json.dumps(context)
    try:
        with httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=300) as c:
            run = checked(c.post("/api/v1/runs/import", files=files, data=form))
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {server}: {exc}", EXIT_OTHER) from None
    raise typer.Exit(report(run, server, junit_path, json_path))
