"""Recording a finished evaluation: scores, per-sample outcomes, raw files and verdicts, in one transaction."""

from __future__ import annotations

import gzip
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from gate.baselines import service as baselines
from gate.baselines.gated import GatedBaseline
from gate.checks.accuracy import judge, profile
from gate.checks.accuracy.models import SampleRecord
from gate.checks.accuracy.results import ParsedResults, SampleOutcome
from gate.db import Base, utcnow
from gate.errors import InvalidInput
from gate.notifications import outbox as notifications
from gate.runs.models import Artifact, Run, RunStatus, Score, TaskVerdict
from gate.verdicts import outcome


def check_gated_metrics(parsed: ParsedResults, baseline: GatedBaseline | None, tasks: list[str]) -> None:
    """Refuse results that lack a requested task or the metric the baseline gates on."""
    missing_tasks = [task for task in tasks if task not in parsed.profiles]
    if missing_tasks:
        raise InvalidInput(f"results lack the requested task(s) {', '.join(missing_tasks)}", field="results")
    if baseline is None:
        return
    for gated in baseline.entries:
        if gated.task not in parsed.profiles:
            continue
        score = parsed.score(gated.task, gated.metric)
        if score is None:
            raise InvalidInput(
                f"results for {gated.task} lack the gated metric {gated.metric!r} of baseline {baseline.name!r}",
                field="results",
            )
        if not 0.0 <= score.value <= 1.0:  # baselines are shares in [0, 1]; anything else cannot be judged
            raise InvalidInput(f"results give {gated.task} {gated.metric} = {score.value!r}, not a share in [0, 1]")
        if score.stderr is not None and score.stderr > 1.0:  # a share's standard error is at most 0.5
            raise InvalidInput(
                f"results give {gated.task} {gated.metric} a standard error of {score.stderr!r}: a share's cannot "
                "exceed 1"
            )


def _outcomes(connection: Connection, run_id: int, tasks: list[str], flt: str) -> dict[str, bool]:
    """Per-document outcomes of a stored run's task, or of a group over its subtasks' documents."""
    rows = connection.execute(
        select(SampleRecord.task, SampleRecord.doc_hash, SampleRecord.correct).where(
            SampleRecord.run_id == run_id, SampleRecord.task.in_(tasks), SampleRecord.filter == flt
        )
    )
    return {f"{task}/{doc_hash}": correct for task, doc_hash, correct in rows if doc_hash}


def _own_outcomes(samples: list[SampleOutcome], tasks: list[str], flt: str) -> dict[str, bool]:
    """The same, from the samples being recorded."""
    return {f"{o.task}/{o.doc_hash}": o.correct for o in samples if o.task in tasks and o.filter == flt and o.doc_hash}


def _no_gated_task(baseline: GatedBaseline, parsed: ParsedResults) -> str:
    tasks = ", ".join(profile.top_level(parsed.profiles))
    entries = ", ".join(s.task for s in baseline.entries)
    return f"baseline {baseline.name!r} has no entry for any task of this run ({tasks}); it gates {entries}"


def insert_rows(connection: Connection, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Rows in one INSERT of many values: a unit-of-work flush of as many objects costs several times more, and a
    run may bring thousands of samples."""
    if rows:
        connection.execute(insert(model.__table__), rows)  # type: ignore[arg-type]  # Core: the ORM's bulk path costs more


def verdict_data(v: judge.Verdict) -> dict[str, Any]:
    data = asdict(v)
    data["outcome"] = v.outcome.value
    return data


def judge_all(
    connection: Connection,
    baseline: GatedBaseline | None,
    model_fingerprint: str | None,
    parsed: ParsedResults,
    samples: list[SampleOutcome],
) -> tuple[list[outcome.Outcome], list[dict[str, Any]]]:
    """Judge each gated task against the baseline (reading only its reference run, if any): the outcomes, and the
    verdict rows less their run_id. Nothing is written, so an import can store its run once, verdict and all."""
    outcomes: list[outcome.Outcome] = []
    verdicts: list[dict[str, Any]] = []
    if baseline is None:
        return outcomes, verdicts
    same_weights = None
    if baseline.from_run_id is not None:
        reference_fingerprint = connection.scalar(select(Run.model_fingerprint).where(Run.id == baseline.from_run_id))
        if model_fingerprint is not None and reference_fingerprint is not None:
            same_weights = model_fingerprint == reference_fingerprint
    for gated in baseline.entries:
        score = parsed.score(gated.task, gated.metric)
        if score is None:
            continue
        candidate = judge.Candidate(
            task=score.task,
            metric=score.metric,
            value=score.value,
            stderr=score.stderr,
            n_samples=score.n_samples,
            profile=parsed.profiles[score.task],
        )
        paired = None
        if baseline.from_run_id is not None:
            flt = gated.metric.split(",", 1)[1]
            members = parsed.members(gated.task, gated.metric)
            paired = judge.pair(
                _own_outcomes(samples, members, flt), _outcomes(connection, baseline.from_run_id, members, flt)
            )
        judged = judge.judge(candidate, gated.reference, paired, same_weights)
        outcomes.append(judged.outcome)
        verdicts.append({
            "baseline_score_id": gated.id, "task": gated.task, "outcome": judged.outcome.value,
            "delta_pp": judged.delta_pp, "details": verdict_data(judged),
        })  # fmt: skip
    return outcomes, verdicts


def score_rows(parsed: ParsedResults) -> list[dict[str, Any]]:
    return [
        {"task": s.task, "metric": s.metric, "value": s.value, "stderr": s.stderr, "n_samples": s.n_samples}
        for s in parsed.scores
    ]


def sample_rows(samples: list[SampleOutcome]) -> list[dict[str, Any]]:
    return [
        {"task": o.task, "filter": o.filter, "doc_id": o.doc_id, "doc_hash": o.doc_hash, "correct": o.correct,
         "filtered_answer": o.filtered_answer, "target": o.target, "question": o.question, "raw_output": o.raw_output}
        for o in samples
    ]  # fmt: skip


def file_rows(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [
        {"name": name, "content_gz": gzip.compress(content, 6), "size": len(content)} for name, content in files.items()
    ]


def insert_results(
    connection: Connection,
    run_id: int,
    parsed: ParsedResults,
    samples: list[SampleOutcome],
    files: dict[str, bytes],
    verdicts: list[dict[str, Any]],
) -> None:
    """The run's scores, samples, files and verdicts, one INSERT per table."""
    for model, rows in (
        (Score, score_rows(parsed)),
        (SampleRecord, sample_rows(samples)),
        (Artifact, file_rows(files)),
        (TaskVerdict, verdicts),
    ):
        insert_rows(connection, model, [{"run_id": run_id, **row} for row in rows])


def final_state(
    baseline: GatedBaseline | None,
    parsed: ParsedResults,
    outcomes: list[outcome.Outcome],
    environment: dict[str, Any],
) -> dict[str, Any]:
    """A run's columns once it is finished: succeeded, with its overall verdict."""
    final = outcome.overall(outcomes)
    reason = None
    if final is None and baseline is not None:  # imported work the baseline does not cover: not a gate result
        final = outcome.Outcome.NOT_COMPARABLE
        reason = _no_gated_task(baseline, parsed)
    return {
        "eval_profile": parsed.profiles,
        "environment": environment,
        "verdict": final.value if final else None,
        "verdict_reason": reason,
        "status": RunStatus.SUCCEEDED,
        "failure_reason": None,  # an earlier attempt's failure is history, not the run's outcome
        "finished_at": utcnow(),
        "lease_expires_at": None,  # the token stays: a replayed upload of this attempt is recognised
    }


def record(
    session: Session,
    run: Run,
    parsed: ParsedResults,
    samples: list[SampleOutcome],
    files: dict[str, bytes],
    environment: dict[str, Any] | None = None,
) -> Run:
    """Store a finished evaluation and judge it against the run's baseline. The caller owns the transaction."""
    baseline = baselines.gated(run.baseline) if run.baseline else None
    check_gated_metrics(parsed, baseline, run.tasks)
    with session.no_autoflush:  # the run's row exists (the caller stored it); its changes go in one UPDATE at the end
        outcomes, verdicts = judge_all(session.connection(), baseline, run.model_fingerprint, parsed, samples)
        insert_results(session.connection(), run.id, parsed, samples, files, verdicts)
    session.expire(run, ["scores", "verdicts"])  # inserted as rows, not through the collections: read them again
    merged = {**(run.environment or {}), **(environment or {})}
    for column, value in final_state(baseline, parsed, outcomes, merged).items():
        setattr(run, column, value)
    notifications.on_run_end(session, run)
    session.flush()
    return run
