"""`gate webhooks`: CI sources that may start runs, and the secret receivers verify notifications with."""

from __future__ import annotations

from typing import Annotated

import typer

from gate.cli.admin import fail, open_sessions
from gate.core import signatures
from gate.errors import GateError
from gate.settings import get_settings
from gate.store import webhooks as store
from gate.store.db import transaction

app = typer.Typer(help="Signed CI webhooks and outbound notifications.", no_args_is_help=True)


def _server_key() -> str:
    key = get_settings().secret_key
    if not key:
        raise fail("set GATE_SECRET_KEY (the same value as the server's) first")
    return key


@app.command("create-source")
def create_source(
    name: Annotated[str, typer.Option(help="the CI system, e.g. github-acme")],
    kind: Annotated[str, typer.Option(help="github, gitlab or standard (Standard Webhooks)")],
) -> None:
    """Register a CI source; its secret is printed once, as the last line."""
    key = _server_key()
    try:
        with transaction(open_sessions(), write=True) as session:
            source = store.create_source(session, name, kind)
            secret = signatures.derive_secret(key, source.name, source.nonce)
    except GateError as error:
        raise fail(error.message) from None
    typer.echo(f"CI source {name!r} ({kind}); POST /api/v1/webhooks/ci?source={name} with this secret:", err=True)
    typer.echo(signatures.standard_secret_text(secret))


@app.command("outbound-secret")
def outbound_secret() -> None:
    """The whsec_ secret that receivers of gate's notifications verify signatures with."""
    typer.echo(signatures.standard_secret_text(signatures.derive_secret(_server_key(), "outbound", "notifications")))
