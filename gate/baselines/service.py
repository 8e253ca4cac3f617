"""Baselines in the store: loaded from data files, or promoted from a finished run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, joinedload, selectinload

from gate import checks
from gate.baselines.files import KIND_REFERENCE_RUN, BaselineSpec, Reference
from gate.baselines.gated import GatedBaseline, GatedEntry
from gate.baselines.models import Baseline, BaselineScore
from gate.errors import Conflict, InvalidInput, NotFound
from gate.prepared import PreparedStatement
from gate.runs.models import Run, RunStatus


def load(session: Session, specs: list[BaselineSpec]) -> int:
    """Insert or update baselines from data files; running it twice changes nothing. Returns rows written."""
    written = 0
    for spec in specs:
        baseline = session.scalar(
            select(Baseline).where(Baseline.name == spec.name).options(selectinload(Baseline.scores))
        )
        if baseline is None:
            baseline = Baseline(name=spec.name, model=spec.model, source=spec.source, kind=spec.kind)
            session.add(baseline)
        baseline.model, baseline.source, baseline.kind = spec.model, spec.source, spec.kind
        if baseline.checks != spec.checks:
            baseline.checks = spec.checks
            written += 1
        existing = {score.task: score for score in baseline.scores}
        for ref in spec.references:
            row = existing.get(ref.task) or BaselineScore(task=ref.task)
            values = {
                "benchmark": ref.benchmark,
                "metric": ref.metric,
                "num_fewshot": ref.num_fewshot,
                "score": ref.score,
                "stderr": ref.stderr,
                "n_samples": ref.n_samples,
                "tolerance_pp": ref.tolerance_pp,
                "two_sided": ref.two_sided,
                "eval_profile": ref.protocol,
            }
            if row.id is None or any(getattr(row, key) != value for key, value in values.items()):
                for key, value in values.items():
                    setattr(row, key, value)
                if row.id is None:
                    baseline.scores.append(row)
                written += 1
    session.flush()
    return written


# one query, joined, built once: every submission names a baseline, and a second query (or building this one) costs
# as much as running it
_NAMED = select(Baseline).where(Baseline.name == bindparam("name")).options(joinedload(Baseline.scores))


def get(session: Session, name: str) -> Baseline:
    found = session.scalars(_NAMED, {"name": name})
    baseline = found.unique().first()
    if baseline is None:
        raise NotFound(f"unknown baseline {name!r}", field="baseline")
    return baseline


def gated(baseline: Baseline) -> GatedBaseline:
    entries = tuple(GatedEntry(score.id, reference(score)) for score in baseline.scores)
    return GatedBaseline(baseline.id, baseline.name, baseline.from_run_id, entries)


# what judging a run against a baseline reads, one row per score: on the path of every import (gate.prepared)
_GATED = PreparedStatement(
    select(
        Baseline.id, Baseline.name, Baseline.from_run_id, BaselineScore.id.label("score_id"), BaselineScore.benchmark,
        BaselineScore.task, BaselineScore.metric, BaselineScore.num_fewshot, BaselineScore.score,
        BaselineScore.tolerance_pp, BaselineScore.two_sided, BaselineScore.stderr, BaselineScore.n_samples,
        BaselineScore.eval_profile,
    )
    .outerjoin(BaselineScore)
    .where(Baseline.name == bindparam("name"))
    .order_by(BaselineScore.id)
)  # fmt: skip


def get_gated(connection: Connection, name: str) -> GatedBaseline:
    """get(), as rows: what judging a run against the baseline reads."""
    rows = _GATED.rows(connection, {"name": name})
    if not rows:
        raise NotFound(f"unknown baseline {name!r}", field="baseline")
    entries = tuple(GatedEntry(r.score_id, reference(r)) for r in rows if r.score_id is not None)
    return GatedBaseline(rows[0].id, rows[0].name, rows[0].from_run_id, entries)


def all_baselines(session: Session) -> list[Baseline]:
    return list(session.scalars(select(Baseline).options(selectinload(Baseline.scores)).order_by(Baseline.name)))


def reference(score: BaselineScore | Any) -> Reference:  # an entity, or a row of _GATED (the same names)
    return Reference(
        benchmark=score.benchmark,
        task=score.task,
        metric=score.metric,
        num_fewshot=score.num_fewshot,
        score=score.score,
        tolerance_pp=score.tolerance_pp,
        two_sided=score.two_sided,
        stderr=score.stderr,
        n_samples=score.n_samples,
        protocol=score.eval_profile,
    )


def promote(session: Session, run_id: int, name: str, tolerance_pp: float = 2.0) -> Baseline:
    """Make a finished full run the reference for later runs: its scores, protocol and samples."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist", field="from_run")
    if run.status != RunStatus.SUCCEEDED:
        raise Conflict(f"run {run_id} is {run.status}: only a succeeded run can become a baseline")
    if session.scalar(select(Baseline.id).where(Baseline.name == name)) is not None:
        raise Conflict(f"a baseline named {name!r} exists already", field="name")
    if not run.tasks:  # a kind with its own report says what a baseline keeps of it
        return _promote_report(session, run, name)
    profiles = run.eval_profile or {}
    smoke = [task for task, profile in profiles.items() if profile.get("limit") is not None]
    if smoke:
        raise InvalidInput(f"run {run_id} used limit on {', '.join(smoke)}: a smoke run cannot be a baseline")
    reference_of = {v.task: v for v in run.baseline.scores} if run.baseline else {}
    baseline = Baseline(
        name=name,
        model=run.model,
        source=f"reference run {run_id} ({run.backend})",
        kind=KIND_REFERENCE_RUN,
        from_run_id=run.id,
    )
    for task, profile in profiles.items():
        gated = reference_of.get(task)
        metric = gated.metric if gated else _default_metric(run, task)
        score = next((s for s in run.scores if s.task == task and s.metric == metric), None)
        if score is None:
            continue
        baseline.scores.append(
            BaselineScore(
                benchmark=gated.benchmark if gated else task,
                task=task,
                metric=metric,
                num_fewshot=profile.get("num_fewshot"),
                score=score.value,
                stderr=score.stderr,
                n_samples=score.n_samples,
                tolerance_pp=gated.tolerance_pp if gated else tolerance_pp,
                two_sided=gated.two_sided if gated else True,
                eval_profile=profile,
            )
        )
    if not baseline.scores:
        raise InvalidInput(f"run {run_id} has no scores to promote")
    session.add(baseline)
    session.flush()
    return baseline


def _promote_report(session: Session, run: Run, name: str) -> Baseline:
    """A run of a kind without lm-eval scores becomes a baseline holding that kind's settings (checks.<kind>)."""
    promoted = getattr(checks.part(run.kind, "recording"), "promoted", None)
    if promoted is None:
        raise InvalidInput(
            f"run {run.id} ({run.kind}) is judged within itself, not against a baseline", field="from_run"
        )
    baseline = Baseline(
        name=name,
        model=run.model,
        source=f"reference run {run.id} ({run.kind}, {run.backend})",
        kind=KIND_REFERENCE_RUN,
        from_run_id=run.id,
        checks={run.kind: promoted(run)},
    )
    session.add(baseline)
    session.flush()
    return baseline


def _default_metric(run: Run, task: str) -> str:
    metrics = [s.metric for s in run.scores if s.task == task]
    strict = [m for m in metrics if m.endswith(",strict-match")]
    return (strict or metrics)[0]
