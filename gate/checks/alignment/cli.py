"""`gate align`: queue an alignment probe, follow it, print the card's comparisons and exit with the verdict.

Exit codes as `gate submit` (gate.cli.gating): 0 pass, 1 fail, 2 not comparable or an error, 3 timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from xml.etree import ElementTree

import httpx
import typer

from gate.checks.alignment import judge
from gate.cli import gating
from gate.cli.admin import fail

PROBE_SETS = "card, gsm8k:N or a file of texts separated by blank lines"


def probes(value: str) -> dict[str, Any]:
    """--probes: card, gsm8k:N, or FILE (texts separated by blank lines) as the spec's `probes`."""
    if value == "card":
        return {"set": "card"}
    if value.startswith("gsm8k:"):
        n = value.removeprefix("gsm8k:")
        if not n.isdigit():
            raise fail(f"--probes gsm8k:N needs a number of questions, not {n!r}", gating.EXIT_OTHER)
        return {"set": "gsm8k", "n": int(n)}
    path = Path(value)
    if not path.is_file():
        raise fail(f"--probes must be {PROBE_SETS}; there is no file {value}", gating.EXIT_OTHER)
    texts = [block.strip() for block in path.read_text().split("\n\n") if block.strip()]
    if not texts:
        raise fail(f"--probes {value} holds no text", gating.EXIT_OTHER)
    return {"set": "texts", "texts": texts}


def precisions(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


def _rows(alignment: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = [(name, c["overall"]) for name, c in alignment["comparisons"].items()]
    if alignment.get("noise_floor"):
        rows.append((judge.NOISE_FLOOR, alignment["noise_floor"]["overall"]))
    return rows


def _pct(value: float | None, decimals: int) -> str:
    return "—" if value is None else f"{value * 100:.{decimals}f} %"


def table(run: dict[str, Any], alignment: dict[str, Any] | None, server: str) -> str:
    """The run's line, then per comparison: cosine, top-1 match, worst text's PPL difference, mean KL."""
    lines = [gating.verdict_table(run, server)]
    if alignment is None:
        return lines[0]
    rows = _rows(alignment)
    width = max((len(name) for name, _ in rows), default=10)
    lines.append(f"  {'comparison':<{width}} {'cosine':>9} {'top-1':>7} {'PPL diff':>9} {'KL':>9}")
    for name, o in rows:
        lines.append(
            f"  {name:<{width}} {o['cosine_mean']:9.6f} {_pct(o['top1_match_rate'], 1):>7} "
            f"{_pct(o['ppl_rel_diff_max'], 3):>9} {o['kl_mean']:9.3g}"
        )
    lines += [f"  {reason}" for reason in alignment["reasons"]]
    return "\n".join(lines)


def junit(run: dict[str, Any], alignment: dict[str, Any] | None) -> bytes:
    """One test case per comparison; a failing one carries the judge's sentences about it."""
    if alignment is None or not alignment["comparisons"]:  # no probe figures: the run's own case says why
        return gating.junit(run)
    names = list(alignment["comparisons"])
    suite = ElementTree.Element("testsuite", name=f"gate align {run['model']}", tests=str(len(names)))
    failures = skipped = 0
    for name in names:
        o = alignment["comparisons"][name]["overall"]
        case = ElementTree.SubElement(suite, "testcase", classname=f"gate.align.{run['model']}", name=name)
        said = [r for r in alignment["reasons"] if r.startswith(f"{name}:")]
        if alignment["outcome"] == "fail" and said:
            failures += 1
            ElementTree.SubElement(case, "failure", message=said[0]).text = "\n".join(said)
        elif alignment["outcome"] == "not_comparable":
            skipped += 1
            ElementTree.SubElement(case, "skipped", message="; ".join(said or alignment["reasons"]))
        else:
            ElementTree.SubElement(case, "system-out").text = (
                f"cosine {o['cosine_mean']:.6f}, top-1 {_pct(o['top1_match_rate'], 1)}, "
                f"PPL diff {_pct(o['ppl_rel_diff_max'], 3)}, KL {o['kl_mean']:.3g} nats"
            )
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    root = ElementTree.Element("testsuites")
    root.append(suite)
    return ElementTree.tostring(root, encoding="utf-8")


def _side(model: str | None, backend: str | None, dtype: str | None, device: str | None) -> dict[str, Any]:
    return {k: v for k, v in {"model": model, "backend": backend, "dtype": dtype, "device": device}.items() if v}


def align(
    server: gating.Server,
    token: gating.Token,
    candidate_model: Annotated[str, typer.Option(metavar="MODEL", help="the candidate's model, as its worker sees it")],
    backend: Annotated[str, typer.Option(metavar="BACKEND", help="hf, vllm, vllm-ascend or openai")] = "hf",
    dtype: Annotated[str, typer.Option(metavar="DTYPE", help="float32, bfloat16 or float16")] = "float32",
    device: Annotated[str, typer.Option(metavar="DEVICE", help="cpu, cuda, npu")] = "cpu",
    reference_model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="the reference's model (default: the candidate's)")
    ] = None,
    reference_backend: Annotated[str | None, typer.Option(metavar="BACKEND", help="default hf")] = None,
    reference_dtype: Annotated[str | None, typer.Option(metavar="DTYPE", help="default float32")] = None,
    reference_device: Annotated[str | None, typer.Option(metavar="DEVICE", help="default cpu")] = None,
    precisions_: Annotated[
        str | None,
        typer.Option("--precisions", metavar="P,P", help="both precisions on both sides, e.g. float32,bfloat16"),
    ] = None,
    probes_: Annotated[str, typer.Option("--probes", metavar="PROBES", help=PROBE_SETS)] = "card",
    top_k: Annotated[int | None, typer.Option(metavar="K", help="alternatives per position (20 to 1000)")] = None,
    baseline: Annotated[str | None, typer.Option(metavar="BASELINE", help="baseline whose thresholds apply")] = None,
    label: Annotated[list[str] | None, typer.Option(metavar="LABEL", help="worker label the run needs")] = None,
    idempotency_key: Annotated[str | None, typer.Option(metavar="KEY", help="repeat-safe key")] = None,
    wait: Annotated[bool, typer.Option(help="follow the run and exit with its verdict")] = False,
    timeout: Annotated[float, typer.Option(metavar="TIMEOUT", help="seconds to wait before exiting 3")] = 6 * 3600.0,
    junit_path: gating.Junit = None,
    json_path: gating.JsonOut = None,
) -> None:
    """Queue an alignment probe; with --wait, exit 0 on pass, 1 on fail, 2 on not comparable or error, 3 on timeout."""
    body: dict[str, Any] = {
        "candidate": _side(candidate_model, backend, dtype, device),
        "reference": _side(reference_model, reference_backend, reference_dtype, reference_device) or None,
        "precisions": precisions(precisions_),
        "probes": probes(probes_),
        "top_k": top_k,
        "baseline": baseline,
        "labels": label or [],
        "ci": gating.ci_context() or None,
        "idempotency_key": idempotency_key,
    }
    body = {k: v for k, v in body.items() if v is not None}
    with httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        try:
            run = gating.checked(client.post("/api/v1/alignment/runs", json=body))
            typer.echo(f"queued run {run['id']}: {server.rstrip('/')}/runs/{run['id']}", err=True)
            if not wait:
                typer.echo(run["id"])
                return
            finished = gating.wait_for(client, run["id"], timeout)
            alignment = None
            if finished is not None and finished["status"] == "succeeded":
                alignment = gating.checked(client.get(f"/api/v1/runs/{run['id']}/alignment"))
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach {server}: {exc}", gating.EXIT_OTHER) from None
    if finished is None:
        typer.echo(f"timeout: run {run['id']} did not finish within {timeout:g} s", err=True)
        raise typer.Exit(gating.EXIT_TIMEOUT)
    code = gating.emit(
        finished,
        table(finished, alignment, server),
        junit(finished, alignment),
        junit_path,
        json_path,
        alignment=alignment,
    )
    raise typer.Exit(code)


commands = {"align": align}
