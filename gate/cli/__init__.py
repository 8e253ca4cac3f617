"""The `gate` command: entry point that assembles the sub-commands."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from gate.cli import admin, gating, serve, webhooks, worker
from gate.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="gate: the benchmark gate for model ports.")


@app.callback()
def _check_configuration() -> None:
    """Refuse a bad GATE_* variable with a sentence, before any command runs."""
    try:
        get_settings()
    except ValidationError as error:
        problems = "; ".join(f"GATE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        raise admin.fail(f"bad configuration: {problems}") from None


app.add_typer(admin.db, name="db")
app.add_typer(admin.token, name="token")
app.add_typer(admin.baselines, name="baselines")
app.add_typer(webhooks.app, name="webhooks")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("submit")(gating.submit)
app.command("import")(gating.import_results)
