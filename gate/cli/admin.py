"""Administration: database migrations, API tokens, baselines."""

from __future__ import annotations

from typing import Annotated

import httpx
import typer

from gate import migrate
from gate.auth import tokens
from gate.baselines import service as stored_baselines
from gate.baselines.files import read_dir
from gate.db import make_engine, make_session_factory, transaction
from gate.errors import GateError
from gate.settings import get_settings

db = typer.Typer(help="Database schema.", no_args_is_help=True)
token = typer.Typer(help="API tokens.", no_args_is_help=True)
baselines = typer.Typer(help="Reference scores.", no_args_is_help=True)


def _engine():
    settings = get_settings()
    return make_engine(settings.database_url, settings.sqlite_busy_timeout_s)


def open_sessions():
    """A session factory on the migrated database."""
    engine = _engine()
    migrate.upgrade(engine)
    return make_session_factory(engine)


def sentence(exc: Exception) -> str:
    """What went wrong, in one line a user can act on."""
    from alembic.util.exc import CommandError
    from sqlalchemy import exc as db

    if isinstance(exc, GateError):
        return exc.message
    first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, db.OperationalError | db.InterfaceError):
        return f"cannot use the database at {_database_url()}: {first}"
    if isinstance(exc, db.ArgumentError | db.NoSuchModuleError):
        return f"GATE_DATABASE_URL is not a database URL gate can use ({first})"
    if isinstance(exc, CommandError):
        return f"the migration failed: {first}"
    if isinstance(exc, httpx.TransportError):
        return f"cannot reach the server: {first}"
    return first if isinstance(exc, OSError) else f"{type(exc).__name__}: {first}"


def _database_url() -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(get_settings().database_url).render_as_string(hide_password=True)
    except Exception:  # the URL itself may be what is wrong
        return "GATE_DATABASE_URL"


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@db.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(metavar="REVISION", help="an Alembic revision")] = "head",
) -> None:
    """Migrate the database to the latest schema."""
    engine = _engine()
    migrate.upgrade(engine, revision)
    typer.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")


@token.command("create")
def token_create(
    name: Annotated[str, typer.Option(metavar="NAME", help="who or what uses the token")],
    scope: Annotated[
        list[str], typer.Option(metavar="SCOPE", help="read, submit, worker or admin; repeat for several")
    ],
) -> None:
    """Create a token; it is printed once, as the last line."""
    try:
        with transaction(open_sessions(), write=True) as session:
            secret = tokens.create(session, name, scope)
    except GateError as error:
        raise fail(error.message) from None
    # which database: a token made in another folder's gate.db is a token the server does not know
    typer.echo(f"token {name!r} with scopes {', '.join(sorted(scope))} in {_database_url()} (shown once):", err=True)
    typer.echo(secret)


@token.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a token by name."""
    try:
        with transaction(make_session_factory(_engine()), write=True) as session:
            tokens.revoke(session, name)
    except GateError as error:
        raise fail(error.message) from None
    typer.echo(f"token {name!r} revoked")


@baselines.command("load")
def baselines_load() -> None:
    """Load baselines/*.yaml into the database (idempotent)."""
    try:
        specs = read_dir(get_settings().baselines_dir)
        with transaction(open_sessions(), write=True) as session:
            written = stored_baselines.load(session, specs)
    except GateError as error:
        raise fail(error.message) from None
    typer.echo(f"{len(specs)} baseline file(s) read, {written} score(s) written")
