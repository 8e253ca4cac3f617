"""Reads: run history with filters and cursors, score series, artifacts."""

from __future__ import annotations

import base64
import binascii
import gzip
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Row,
    ScalarSelect,
    Select,
    bindparam,
    func,
    literal,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import QueryableAttribute, Session, selectinload

from gate.baselines.models import Baseline, BaselineScore
from gate.db import MAX_ID
from gate.errors import InvalidInput, NotFound
from gate.prepared import PreparedStatement, read_snapshot
from gate.runs.models import Artifact, Run, RunTask, Score, TaskVerdict

T = TypeVar("T")

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


def _filtered(query: Select[Any], flt: RunFilter, limit: int, cursor: str | None) -> Select[Any]:
    query = query.order_by(Run.id.desc()).limit(limit + 1)
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
        named = select(Baseline.id).where(Baseline.name == flt.baseline).correlate(None)  # not RUN_ROWS' join
        query = query.where(Run.baseline_id == named.scalar_subquery())
    if flt.since is not None:
        query = query.where(Run.created_at >= flt.since)
    if flt.until is not None:
        query = query.where(Run.created_at < flt.until)
    return query


def _page(rows: list[T], limit: int) -> tuple[list[T], str | None]:
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].id)  # type: ignore[attr-defined]
    return rows, None


def list_runs(
    session: Session, flt: RunFilter, *, limit: int, cursor: str | None = None
) -> tuple[list[Run], str | None]:
    """Newest first; returns the page and the cursor of the next one (None at the end)."""
    query = _filtered(select(Run).options(selectinload(Run.baseline)), flt, limit, cursor)
    return _page(list(session.scalars(query)), limit)


# The API's hottest reads (a run, a page of history) as rows on a bare connection: a run's columns by name, and
# its baseline's as baseline_name. They cost a fraction of ORM entities in a session, and the statements for one
# run are built once: building one costs four times running it on SQLite (bench/mlflow_peer.py).
RUN_ROWS = select(Run.__table__, Baseline.name.label("baseline_name")).outerjoin(
    Baseline, Run.baseline_id == Baseline.id
)


class ScoreRow(NamedTuple):
    task: str
    metric: str
    value: float
    stderr: float | None
    n_samples: int | None


class VerdictRow(NamedTuple):
    task: str
    outcome: str
    delta_pp: float
    details: dict[str, Any]


_SCORE = (Score.task, Score.metric, Score.value, Score.stderr, Score.n_samples)
_VERDICT = (TaskVerdict.task, TaskVerdict.outcome, TaskVerdict.delta_pp, TaskVerdict.details)
_RUN_STATEMENT = RUN_ROWS.where(Run.id == bindparam("run_id"))
_RUN = PreparedStatement(_RUN_STATEMENT)


def _rows_as_json(
    child: type[Score | TaskVerdict | Artifact], columns: tuple[QueryableAttribute[Any], ...], order: Any
) -> ScalarSelect[Any]:
    """A run's child rows as one JSON array of arrays (Postgres), correlated to the run of the outer statement."""
    aggregated = func.json_agg(aggregate_order_by(func.json_build_array(*columns), order))
    return select(aggregated).where(child.run_id == Run.id).scalar_subquery()


# On Postgres, where each statement is a round trip, a run and its children are one statement: the children come
# as JSON, in which Postgres writes a float8 with the digits that read back exactly. SQLite's JSON keeps only 15
# significant digits, so there it is two statements: the run, then its children as rows of one UNION ALL
# (kind, id, task, metric or outcome, value or delta_pp, stderr, n_samples, details; a file is its name as task).
RUN_WITH_CHILDREN = PreparedStatement(
    _RUN_STATEMENT.add_columns(
        _rows_as_json(Score, _SCORE, Score.id).label("score_rows"),
        _rows_as_json(TaskVerdict, _VERDICT, TaskVerdict.id).label("verdict_rows"),
        _rows_as_json(Artifact, (Artifact.name,), Artifact.name.collate("C")).label("file_rows"),  # as Python sorts
    )
)
_SCORE_KIND, _VERDICT_KIND, _FILE_KIND = 0, 1, 2
_CHILDREN = PreparedStatement(
    union_all(
        select(literal(_SCORE_KIND).label("kind"), Score.id, *_SCORE, type_coerce(null(), JSON)).where(
            Score.run_id == bindparam("run_id")
        ),
        select(literal(_VERDICT_KIND), TaskVerdict.id, *_VERDICT[:3], null(), null(), TaskVerdict.details).where(
            TaskVerdict.run_id == bindparam("run_id")
        ),
        select(literal(_FILE_KIND), Artifact.id, Artifact.name, *[null()] * 5).where(
            Artifact.run_id == bindparam("run_id")
        ),
    ).order_by("kind", "id")
)


def run_rows(
    connection: Connection, flt: RunFilter, *, limit: int, cursor: str | None = None
) -> tuple[list[Row[Any]], str | None]:
    """list_runs, as rows."""
    return _page(list(connection.execute(_filtered(RUN_ROWS, flt, limit, cursor))), limit)


@dataclass(frozen=True)
class RunRows:
    run: Row[Any] | SimpleNamespace  # a row of RUN_ROWS, or a run's values as just written (accuracy.importing)
    scores: list[ScoreRow]
    verdicts: list[VerdictRow]
    files: list[str]


def with_children(run: Any | None, run_id: int) -> RunRows:
    """A row of RUN_WITH_CHILDREN (Postgres) as a run's rows."""
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return RunRows(
        run,
        [ScoreRow(*r) for r in run.score_rows or []],
        [VerdictRow(*r) for r in run.verdict_rows or []],
        [name for (name,) in run.file_rows or []],
    )


def run_detail_rows(engine: Engine, run_id: int) -> RunRows:
    """SQLite: a run, its scores, verdicts and file names, in one snapshot (Postgres reads RUN_WITH_CHILDREN)."""
    key = {"run_id": run_id}
    with read_snapshot(engine) as driver:
        found = _RUN.driver_rows(engine.dialect, driver, key)
        if not found:
            raise NotFound(f"run {run_id} does not exist")
        children = _CHILDREN.driver_rows(engine.dialect, driver, key)
    scores, verdicts, files = [], [], []
    for kind, _id, task, label, value, stderr, n_samples, details in children:
        if kind == _SCORE_KIND:
            scores.append(ScoreRow(task, label, value, stderr, n_samples))
        elif kind == _VERDICT_KIND:
            verdicts.append(VerdictRow(task, label, value, details))
        else:
            files.append(task)
    return RunRows(found[0], scores, verdicts, sorted(files))  # Python's order of str is SQLite's BINARY collation


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
