"""The `gate` command: entry point that assembles the sub-commands."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from typer._click import exceptions as click  # typer 0.2x vendors click: its own exception classes

from gate import checks
from gate.cli import admin, datasets, gating, serve, webhooks, worker
from gate.settings import get_settings

# Plain click help at up to 120 columns: typer's rich panels cut long option names at 80 columns.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="gate: the benchmark gate for model ports.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"max_content_width": 120},
)


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
app.add_typer(datasets.app, name="datasets")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("submit")(gating.submit)
app.command("import")(gating.import_results)


def add_commands() -> None:
    """Commands whose modules import gate.cli's parts (so they are added at start, not at import): `gate qualify`
    and each check kind's own (`gate align`)."""
    from gate.qualifications import cli as qualifying

    app.command("qualify")(qualifying.qualify)
    for kind in checks.KINDS:
        if checks.has_part(kind, "cli"):
            for name, command in checks.part(kind, "cli").commands.items():
                app.command(name)(command)


def main() -> None:
    """`gate`: every failure is one sentence on stderr and exit code 2; `--debug` shows the traceback instead."""
    add_commands()
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        code = app(prog_name="gate", standalone_mode=False)
    except click.UsageError as exc:  # click prints these as four lines of usage; one sentence says it
        if isinstance(exc, click.NoArgsIsHelpError) and exc.ctx is not None:
            typer.echo(exc.ctx.get_help())
            sys.exit(0)
        where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        typer.echo(f"error: {admin.sentence(exc)} (--debug shows the traceback)", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
