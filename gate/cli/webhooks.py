"""`gate webhooks`: CI sources that may start runs, how they hear the verdict, and the outbound secret."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from gate.cli.admin import fail, open_sessions
from gate.db import transaction
from gate.errors import GateError
from gate.notifications import commit_status, notifiers, sealing, signatures
from gate.notifications import inbound as store
from gate.settings import get_settings

TOKEN_ENV = "GATE_NOTIFIER_TOKEN"

app = typer.Typer(help="Signed CI webhooks and outbound notifications.", no_args_is_help=True)


def _server_key() -> str:
    key = get_settings().secret_key
    if not key:
        raise fail("set GATE_SECRET_KEY (the same value as the server's) first")
    return key


@app.command("create-source")
def create_source(
    name: Annotated[str, typer.Option(metavar="NAME", help="the CI system, e.g. github-acme")],
    kind: Annotated[str, typer.Option(metavar="KIND", help="github, gitlab or standard (Standard Webhooks)")],
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


def _read_token() -> str:
    """The API token, from the environment or standard input: never an argument (shell history, `ps`)."""
    if token := os.environ.get(TOKEN_ENV, "").strip():
        return token
    if sys.stdin.isatty():
        return typer.prompt("API token", hide_input=True).strip()
    return sys.stdin.readline().strip()


@app.command("add-notifier")
def add_notifier(
    source: Annotated[str, typer.Option(metavar="SOURCE", help="the CI source whose runs are reported")],
    kind: Annotated[
        str, typer.Option(metavar="KIND", help="github-status, gitlab-status, or webhook (Standard Webhooks)")
    ],
    url: Annotated[
        str | None,
        typer.Option(
            help="API base URL (default api.github.com / gitlab.com/api/v4; GitHub Enterprise: https://HOST/api/v3) "
            "or, for a webhook, its URL",
            metavar="URL",
        ),
    ] = None,
) -> None:
    """Report the source's runs: commit statuses (token from $GATE_NOTIFIER_TOKEN or stdin) or a webhook.

    Adding a notifier of a kind the source has already replaces it (a new URL, a rotated token)."""
    key = _server_key()
    target = url or commit_status.DEFAULT_API_URL.get(kind)
    if not target:
        raise fail("--url is required for a webhook notifier")
    sealed = None
    if kind in commit_status.KINDS:
        token = _read_token()
        if not token:
            raise fail(f"no API token: set {TOKEN_ENV} or pass it on standard input")
        sealed = sealing.seal(key, token, notifiers.bound_to(source, kind))
    try:
        with transaction(open_sessions(), write=True) as session:
            notifiers.put(session, source, kind, target, sealed)
    except GateError as error:
        raise fail(error.message) from None
    typer.echo(f"runs started by {source!r} are reported by a {kind} notifier to {target}")


@app.command("remove-notifier")
def remove_notifier(
    source: Annotated[str, typer.Option(metavar="SOURCE", help="the CI source")],
    kind: Annotated[str, typer.Option(metavar="KIND", help="github-status, gitlab-status or webhook")],
) -> None:
    """Stop reporting the source's runs this way; messages not yet sent are dropped."""
    try:
        with transaction(open_sessions(), write=True) as session:
            notifiers.remove(session, source, kind)
    except GateError as error:
        raise fail(error.message) from None
    typer.echo(f"the {kind} notifier of {source!r} is removed")


@app.command("sources")
def sources() -> None:
    """CI sources and their notifiers (tokens are never shown)."""
    with transaction(open_sessions()) as session:
        for source, attached in notifiers.listing(session):
            typer.echo(f"{source.name} ({source.kind})")
            for notifier in attached:
                token = ", token set" if notifier.sealed_token else ""
                typer.echo(f"  {notifier.kind} -> {notifier.url}{token}")
