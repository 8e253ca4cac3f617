"""Reading uploaded files, bounded in size."""

from __future__ import annotations

from fastapi import UploadFile

from gate.errors import TooLarge

READ_CHUNK = 1 << 20


async def read_bounded(upload: UploadFile, limit: int, field: str) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"{field} is larger than the {limit} byte limit", field=field)
        chunks.append(chunk)
    return b"".join(chunks)
