"""`gate serve`: the API (and, with --worker, a local worker beside it)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run the gate server: REST API under /api/v1 and the dashboard."""
    import uvicorn

    from gate.api.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")
