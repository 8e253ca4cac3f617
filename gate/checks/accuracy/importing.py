"""Importing a run made by hand: read and judged first, then stored in one short write.

The reads (the baseline, and its reference run's answers for a paired comparison) and the judging happen before
the write, outside any write lock: a verdict stores what it was judged against, so a baseline changed meanwhile
orders the import before the change. The write is then one statement on Postgres, where each statement is a
network round trip (the run, its tasks, scores, samples, files and verdicts were six, with BEGIN and COMMIT more
than half of an import's time), and one BEGIN IMMEDIATE transaction on SQLite, whose statements are calls into a
library: the write lock is held only while the rows go in. On Postgres the baseline's read and the write share one
connection in autocommit, and psycopg runs both statements itself (gate.prepared).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    bindparam,
    column,
    func,
    insert,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY

from gate.baselines import service as baselines
from gate.baselines.gated import GatedBaseline
from gate.checks.accuracy import recording
from gate.checks.accuracy.models import SampleRecord
from gate.checks.accuracy.results import ParsedResults, SampleOutcome
from gate.db import Base, Sessions, is_sqlite, utcnow
from gate.prepared import PreparedStatement
from gate.runs.models import Artifact, Run, RunTask, Score, TaskVerdict
from gate.runs.queries import RunRows, ScoreRow, VerdictRow

_RUNS = cast(Table, Run.__table__)
# the run's columns an import writes; the others stay NULL (a queued run's lease, progress, log...)
_WRITTEN = (
    "kind", "model", "backend", "tasks", "options", "labels", "priority", "baseline_id", "origin", "status", "verdict",
    "verdict_reason", "attempts", "max_attempts", "cancel_requested", "created_at", "started_at", "finished_at",
    "submitted_by", "ci_context", "model_fingerprint", "environment", "eval_profile",
)  # fmt: skip
_UNSET = {c.name: None for c in _RUNS.c if c.name not in _WRITTEN and c.name != "id"}
# a child table's rows as the import binds them: their key in the statement's parameters, the table, its columns
_CHILDREN: tuple[tuple[str, type[Base], tuple[str, ...]], ...] = (
    ("tasks", RunTask, ("task",)),
    ("scores", Score, ("task", "metric", "value", "stderr", "n_samples")),
    ("samples", SampleRecord, ("task", "filter", "doc_id", "doc_hash", "correct", "filtered_answer", "target",
                               "question", "raw_output")),
    ("verdicts", TaskVerdict, ("baseline_score_id", "task", "outcome", "delta_pp", "details")),
)  # fmt: skip


def _one_statement() -> Select[int]:
    """Postgres: the run's INSERT, and each child table's INSERT of rows that take the run's new id, as
    data-modifying CTEs of one statement. A child's rows come as one JSON array (json_to_recordset, typed as its
    table's columns): the statement's text, and so psycopg's parse of it and Postgres's prepared plan, is the same
    for every import (psycopg caches its parse of statements up to 4 KiB and 50 parameters: this one stays under).
    JSON writes a float with the digits that read back exactly. Files are bytes, which JSON cannot hold: they come
    as three arrays."""
    run = (
        insert(_RUNS)
        .values({name: bindparam(f"run_{name}", type_=_RUNS.c[name].type) for name in _WRITTEN})
        .returning(_RUNS.c.id)
        .cte("new_run")
    )
    inserts = []
    for key, model, names in _CHILDREN:
        table = cast(Table, model.__table__)
        rows = (
            func.json_to_recordset(bindparam(key, type_=JSON))
            .table_valued(*[column(name, table.c[name].type) for name in names])
            .render_derived(with_types=True)
        )
        chosen = select(run.c.id, *[rows.c[name] for name in names]).select_from(run.join(rows, true()))
        inserts.append(insert(table).from_select(["run_id", *names], chosen).cte(f"new_{key}"))
    files = (
        func.unnest(
            bindparam("file_names", type_=ARRAY(String)),
            bindparam("file_contents", type_=ARRAY(LargeBinary)),
            bindparam("file_sizes", type_=ARRAY(Integer)),
        )
        .table_valued("name", "content_gz", "size")
        .render_derived()
    )
    chosen = select(run.c.id, files.c.name, files.c.content_gz, files.c.size).select_from(run.join(files, true()))
    artifacts = cast(Table, Artifact.__table__)
    inserts.append(insert(artifacts).from_select(["run_id", *files.c.keys()], chosen).cte("new_files"))
    return select(run.c.id).add_cte(*inserts)


_ONE_STATEMENT = PreparedStatement(_one_statement())  # built once: building it costs more than running it
_INSERT_RUN = insert(_RUNS).returning(_RUNS.c.id)


def _store_postgres(
    connection: Connection, run: dict[str, Any], children: dict[str, list[dict[str, Any]]], files: list[dict[str, Any]]
) -> int:
    (stored,) = _ONE_STATEMENT.rows(connection, {
        **{f"run_{name}": run[name] for name in _WRITTEN},
        **children,
        "file_names": [f["name"] for f in files],
        "file_contents": [f["content_gz"] for f in files],
        "file_sizes": [f["size"] for f in files],
    })  # fmt: skip
    return int(stored.id)


def _store_sqlite(
    connection: Connection, run: dict[str, Any], children: dict[str, list[dict[str, Any]]], files: list[dict[str, Any]]
) -> int:
    stored: int = connection.execute(_INSERT_RUN, {name: run[name] for name in _WRITTEN}).scalar_one()
    for key, model, _names in _CHILDREN:
        recording.insert_rows(connection, model, [{"run_id": stored, **row} for row in children[key]])
    recording.insert_rows(connection, Artifact, [{"run_id": stored, **row} for row in files])
    return stored


def _judged(
    connection: Connection,
    baseline_name: str | None,
    parsed: ParsedResults,
    samples: list[SampleOutcome],
    model_fingerprint: str | None,
) -> tuple[GatedBaseline | None, dict[str, Any], list[dict[str, Any]]]:
    """The baseline, the run's columns that depend on it (its id, the final state), and the verdicts' rows: what an
    import reads and judges."""
    baseline = None if baseline_name is None else baselines.get_gated(connection, baseline_name)
    recording.check_gated_metrics(parsed, baseline, [])
    outcomes, verdicts = recording.judge_all(connection, baseline, model_fingerprint, parsed, samples)
    judged = recording.final_state(baseline, parsed, outcomes, {}) | {"baseline_id": baseline.id if baseline else None}
    return baseline, judged, verdicts


def import_results(
    sessions: Sessions,
    statements: Engine,
    *,
    model: str,
    backend: str,
    baseline_name: str | None,
    parsed: ParsedResults,
    samples: list[SampleOutcome],
    files: dict[str, bytes],
    submitted_by: str | None,
    ci_context: dict[str, Any] | None = None,
    model_fingerprint: str | None = None,
) -> RunRows:
    """A run made by hand, stored finished with its scores, samples, files and verdicts, and answered from what
    was written (the same as a read of it: tests/test_api_runs.py). `statements`: db.reader's engine."""
    now = utcnow()
    run = {
        "kind": "accuracy", "model": model, "backend": backend, "tasks": parsed.tasks, "options": {}, "labels": [],
        "priority": 0, "origin": "import", "attempts": 0, "max_attempts": 0, "cancel_requested": False,
        "created_at": now, "started_at": now, "submitted_by": submitted_by, "ci_context": ci_context,
        "model_fingerprint": model_fingerprint,
    }  # fmt: skip
    scores = recording.score_rows(parsed)
    children = {
        "tasks": [{"task": task} for task in parsed.tasks],
        "scores": scores,
        "samples": recording.sample_rows(samples),
    }
    # An import has no CI source and no callback, so it has no notifications to queue (outbox.on_run_end).
    if is_sqlite(statements):
        with statements.connect() as connection:
            baseline, judged, verdicts = _judged(connection, baseline_name, parsed, samples, model_fingerprint)
        run |= judged
        with sessions.writer_bind.begin() as writing:  # BEGIN IMMEDIATE (db.Sessions)
            run_id = _store_sqlite(writing, run, children | {"verdicts": verdicts}, recording.file_rows(files))
    else:
        with statements.connect() as connection:  # autocommit: the write is its own transaction
            baseline, judged, verdicts = _judged(connection, baseline_name, parsed, samples, model_fingerprint)
            run |= judged
            run_id = _store_postgres(connection, run, children | {"verdicts": verdicts}, recording.file_rows(files))
    return RunRows(
        SimpleNamespace(**(_UNSET | run), id=run_id, baseline_name=baseline.name if baseline else None),
        [ScoreRow(**row) for row in scores],
        [VerdictRow(v["task"], v["outcome"], v["delta_pp"], v["details"]) for v in verdicts],
        sorted(files),
    )
