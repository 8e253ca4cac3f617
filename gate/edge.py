"""What every request passes at the edge: no control characters in its path or query, safe download names."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import Request

from gate.errors import InvalidInput
from gate.runs.options import CONTROL  # Postgres text cannot hold NUL; no name gate looks up needs one


async def refuse_control_characters(request: Request) -> None:  # no I/O: on the event loop
    # the scope's decoded path and raw query: request.url would build a whole URL for every request
    if CONTROL.search(request.scope["path"]):
        raise InvalidInput("the URL path contains a control character", field="path")
    if not request.scope["query_string"]:
        return
    for name, value in request.query_params.multi_items():
        if CONTROL.search(name) or CONTROL.search(value):
            raise InvalidInput(f"query parameter {name!r} contains a control character", field=name)


def content_disposition(filename: str) -> str:
    """An attachment header per RFC 6266: an ASCII fallback of safe characters, and the exact name in filename*."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
