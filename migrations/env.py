"""Alembic environment: the URL comes from gate's settings (or the caller's config), metadata from gate."""

from alembic import context

from gate import models  # noqa: F401  (registers every table)
from gate.db import Base, make_engine
from gate.settings import get_settings

config = context.config
url = config.attributes.get("url") or get_settings().database_url


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
