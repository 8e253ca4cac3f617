"""Reads: run history with filters and cursors, score series, artifacts."""

from __future__ import annotations

import base64
import binascii
import gzip
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gate.baselines.models import Baseline, BaselineScore
from gate.db import MAX_ID
from gate.errors import InvalidInput, NotFound
from gate.runs.models import Artifact, Run, RunTask, Score

DEFAULT_HISTORY_METRIC = "exact_match,strict-match"


@dataclass(frozen=True)
class RunFilter:
    model: str | None = None
    task: str | None = None
    status: str | None = None
    verdict: str | None = None
    baseline: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(run_id: int) -> str:
    return base64.urlsafe_b64encode(f"r{run_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("r"):
            raise ValueError
        run_id = int(raw[1:])
        if not 0 < run_id <= MAX_ID:
            raise ValueError
        return run_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this server issued", field="cursor") from None


def list_runs(
    session: Session, flt: RunFilter, *, limit: int, cursor: str | None = None
) -> tuple[list[Run], str | None]:
    """Newest first; returns the page and the cursor of the next one (None at the end)."""
    query = select(Run).options(selectinload(Run.baseline)).order_by(Run.id.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(Run.id < decode_cursor(cursor))
    if flt.model is not None:
        query = query.where(Run.model == flt.model)
    if flt.task is not None:
        # EXISTS probes the (run_id, task) key per candidate; IN (subquery) would materialise every run of the task
        query = query.where(select(RunTask.run_id).where(RunTask.run_id == Run.id, RunTask.task == flt.task).exists())
    if flt.status is not None:
        query = query.where(Run.status == flt.status)
    if flt.verdict is not None:
        query = query.where(Run.verdict == flt.verdict)
    if flt.baseline is not None:
        query = query.where(
            Run.baseline_id == select(Baseline.id).where(Baseline.name == flt.baseline).scalar_subquery()
        )
    if flt.since is not None:
        query = query.where(Run.created_at >= flt.since)
    if flt.until is not None:
        query = query.where(Run.created_at < flt.until)
    rows = list(session.scalars(query))
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].id)
    return rows, None


def gated_metric(session: Session, task: str) -> str:
    metric = session.scalar(select(BaselineScore.metric).where(BaselineScore.task == task).limit(1))
    return metric or DEFAULT_HISTORY_METRIC


@dataclass(frozen=True)
class HistoryPoint:
    run_id: int
    at: datetime | None
    value: float
    stderr: float | None
    verdict: str | None
    backend: str


def history(session: Session, model: str, task: str, metric: str | None, limit: int) -> tuple[str, list[HistoryPoint]]:
    """The score series of a model on one task, oldest first (the newest `limit` points)."""
    metric = metric or gated_metric(session, task)
    rows = session.execute(
        select(Run.id, Run.finished_at, Score.value, Score.stderr, Run.verdict, Run.backend)
        .join(Score, Score.run_id == Run.id)
        .where(Run.model == model, Score.task == task, Score.metric == metric)
        .order_by(Run.id.desc())
        .limit(limit)
    ).all()
    points = [HistoryPoint(run_id=r[0], at=r[1], value=r[2], stderr=r[3], verdict=r[4], backend=r[5]) for r in rows]
    return metric, points[::-1]


def artifact(session: Session, run_id: int, name: str) -> bytes:
    found = session.scalar(select(Artifact).where(Artifact.run_id == run_id, Artifact.name == name))
    if found is None:
        raise NotFound(f"run {run_id} has no file {name!r}")
    return gzip.decompress(found.content_gz)


def artifact_names(session: Session, run_id: int) -> list[str]:
    return list(session.scalars(select(Artifact.name).where(Artifact.run_id == run_id).order_by(Artifact.name)))
