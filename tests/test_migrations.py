"""The migrations build exactly the tables the models declare (on SQLite and Postgres)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

import gate.models  # noqa: F401  (every domain's and kind's tables, as Alembic's env imports them)
from gate import db, migrate
from gate.baselines import service as baselines
from gate.baselines.files import read_dir
from gate.db import Base, is_sqlite, make_engine, make_session_factory, transaction
from gate.settings import Settings


def foreign_key(difference: tuple[Any, ...]) -> tuple[str, tuple[str, ...]] | None:
    """(table, columns) of a foreign key added or removed, else None."""
    if difference[0] not in ("add_fk", "remove_fk"):
        return None
    constraint = difference[1]
    return constraint.table.name, tuple(column.name for column in constraint.columns)


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    sqlite = is_sqlite(engine)
    engine.dispose()
    if sqlite:
        # SQLite keeps no name for a foreign key added by ALTER TABLE (two early migrations): the same key read
        # back unnamed is a difference of name only, which SQLite cannot hold anyway
        removed = {foreign_key(d) for d in differences if d[0] == "remove_fk"}
        added = {foreign_key(d) for d in differences if d[0] == "add_fk"}
        differences = [d for d in differences if foreign_key(d) is None or foreign_key(d) not in removed & added]
    assert differences == []


def test_processes_starting_together_migrate_one_after_another(database_url: str) -> None:
    """API processes (and a migrations job) that start at once on a fresh database: each waits for the one
    migrating, then finds the schema at head; none fails on a table another created."""
    engines = [make_engine(database_url) for _ in range(4)]
    with engines[0].connect():  # the file exists in WAL mode, as `gate serve` leaves it before its processes start
        pass
    barrier = threading.Barrier(len(engines))

    def start(engine: Engine) -> None:
        barrier.wait()
        migrate.upgrade(engine)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(start, engines))  # re-raises the first failure
        with engines[0].connect() as connection:
            assert MigrationContext.configure(connection).get_current_heads() == tuple(
                ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_heads()
            )
            assert connection.execute(text("SELECT count(*) FROM leaders")).scalar_one() == 1
    finally:
        for engine in engines:
            engine.dispose()


def test_processes_loading_the_baselines_files_at_once_take_turns(database_url: str) -> None:
    """Each API process loads the baselines files at start-up. Two doing it at once on a fresh database: the second
    waits for the first to commit and finds its rows (without the turn it inserted them too, failed on the unique
    name, and uvicorn's supervisor then stopped every process)."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    specs = read_dir(Settings().baselines_dir)
    first_holds = threading.Event()

    def second() -> int:
        first_holds.wait()
        with transaction(sessions, write=True) as session:
            db.one_at_a_time(session.connection())
            return baselines.load(session, specs)

    try:
        with ThreadPoolExecutor(1) as pool:
            with transaction(sessions, write=True) as session:
                db.one_at_a_time(session.connection())
                assert baselines.load(session, specs) > 0
                waiting = pool.submit(second)
                first_holds.set()
                time.sleep(1)  # the second is now waiting for its turn, not inserting
                assert not waiting.done()
            assert waiting.result(timeout=30) == 0  # it found the first's rows: nothing to write
    finally:
        engine.dispose()
