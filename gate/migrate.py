"""Alembic, driven from code: `gate db upgrade`, start-up and tests use the same path."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from gate.db import IMMEDIATE, one_at_a_time
from gate.settings import ROOT


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade in one transaction that holds the database's write lock (SQLite) or an advisory lock (Postgres):
    API processes and hosts starting together, and a migrations job, migrate one after another, not at once."""
    with engine.connect().execution_options(**IMMEDIATE) as connection, connection.begin():
        one_at_a_time(connection)
        config = alembic_config(str(engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
