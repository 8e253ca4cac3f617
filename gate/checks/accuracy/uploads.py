"""Reading uploaded lm-eval files: parsed and cross-checked before anything is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from gate.checks.accuracy import results
from gate.errors import InvalidInput
from gate.runs.uploads import read_bounded

T = TypeVar("T")


SMALL_BYTES = 256 * 1024


async def _parse(parse: Callable[..., T], data: bytes, *args: Any) -> T:
    """A large file is parsed in a worker thread: it must not stall the event loop (and every health check with
    it). A small one, the usual results file of a few KiB, is parsed here: a thread hop costs more."""
    if len(data) <= SMALL_BYTES:
        return parse(data, *args)
    return await run_in_threadpool(parse, data, *args)


async def parse_upload(
    results_file: UploadFile, sample_files: list[UploadFile], limit: int
) -> tuple[results.ParsedResults, list[results.SampleOutcome], dict[str, bytes]]:
    """Parse results and samples; every sample file must match a task and the scores of the results."""
    content = await read_bounded(results_file, limit, "results")
    parsed = await _parse(results.parse_results, content)
    files = {"results.json": content}
    outcomes: list[results.SampleOutcome] = []
    seen_tasks: set[str] = set()
    for upload in sample_files:
        data = await read_bounded(upload, limit, "samples")
        task = results.samples_task(upload.filename or "", parsed)
        if task in seen_tasks:
            raise InvalidInput(f"two samples files for task {task!r}", field="samples")
        seen_tasks.add(task)
        outcomes += await _parse(results.parse_samples, data, task, parsed)
        files[f"samples_{task}.jsonl"] = data
    return parsed, outcomes, files
