"""The `gate` command: entry point that assembles the sub-commands."""

from __future__ import annotations

import typer

from gate.cli import admin, gating, serve, webhooks, worker

app = typer.Typer(no_args_is_help=True, add_completion=False, help="gate: the benchmark gate for model ports.")
app.add_typer(admin.db, name="db")
app.add_typer(admin.token, name="token")
app.add_typer(admin.baselines, name="baselines")
app.add_typer(webhooks.app, name="webhooks")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("submit")(gating.submit)
app.command("import")(gating.import_results)
