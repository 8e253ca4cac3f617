"""`gate datasets check`: before any run, which lm-eval tasks a local dataset mirror serves and what it lacks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gate.cli.admin import fail

app = typer.Typer(help="Local dataset mirrors for air-gapped workers (gate worker --dataset-mirror).")

MIRROR_HELP = "DIR/ORG/NAME as `hf download --repo-type dataset ORG/NAME --local-dir DIR/ORG/NAME` writes it"


@app.command("check")
def check(
    mirror: Annotated[Path, typer.Option(metavar="DIR", help=MIRROR_HELP)],
    tasks: Annotated[str, typer.Option(metavar="TASKS", help="lm-eval tasks, groups or tags, e.g. gsm8k,mmlu")],
) -> None:
    """Say per task whether the mirror serves it (a group: how many of its subtasks) and what is missing. Exit
    status 0 when every task is served, 1 when one is not."""
    from gate.checks.accuracy import mirror as mirrors

    names = [name.strip() for name in tasks.split(",") if name.strip()]
    if not names:
        raise fail("--tasks names no task")
    if not mirror.is_dir():
        raise fail(f"the mirror {mirror} is not a folder")
    root = mirror.resolve()
    try:
        named = {name: mirrors.leaves(name) for name in names}
    except mirrors.NotInMirror as exc:
        raise fail(str(exc)) from None
    served_all = True
    for name, leaves in named.items():
        gaps = mirrors.gaps(leaves, root)
        served_all = served_all and not gaps
        if len(leaves) > 1:
            line = f"{name}: {len(leaves) - len(gaps)} of {len(leaves)} subtasks served"
        else:
            line = f"{name}: {'not served' if gaps else 'served'}"
        typer.echo(f"{line}; missing {mirrors.describe(gaps)}" if gaps else line)
    raise typer.Exit(0 if served_all else 1)
