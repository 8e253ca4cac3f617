"""Baselines and score history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from gate.auth.deps import Admin, Reader
from gate.baselines import service as baselines
from gate.baselines.models import BaselineScore
from gate.baselines.schemas import BaselineOut, BaselinePromote, HistoryOut, HistoryPointOut
from gate.deps import SessionDep
from gate.errors import InvalidInput
from gate.runs import queries
from gate.runs.options import check_task

router = APIRouter(tags=["baselines"])


@router.get("/baselines", response_model=list[BaselineOut])
def list_baselines(session: SessionDep, _: Reader) -> list[BaselineOut]:
    return [BaselineOut.of(b) for b in baselines.all_baselines(session)]


@router.post("/baselines", status_code=status.HTTP_201_CREATED, response_model=BaselineOut)
def promote_baseline(body: BaselinePromote, session: SessionDep, _: Admin) -> BaselineOut:
    """Promote a finished full run to a baseline (e.g. a GPU BF16 run as the reference for an NPU port)."""
    return BaselineOut.of(baselines.promote(session, body.from_run, body.name))


@router.get("/models/{name:path}/history", response_model=HistoryOut)
def model_history(
    name: str,
    session: SessionDep,
    _: Reader,
    task: Annotated[str, Query(max_length=200)] = "gsm8k",
    metric: Annotated[str | None, Query(max_length=200)] = None,
    baseline: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> HistoryOut:
    """The score series of a model on one task, oldest first, beside its baseline."""
    try:
        check_task(task)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="task") from None
    reference: BaselineScore | None = None
    if baseline is not None:
        reference = next((s for s in baselines.get(session, baseline).scores if s.task == task), None)
        if reference is None:
            raise InvalidInput(f"baseline {baseline!r} has no score for task {task!r}", field="task")
    metric_used, points = queries.history(
        session, name, task, metric or (reference.metric if reference else None), limit
    )
    return HistoryOut(
        model=name,
        task=task,
        metric=metric_used,
        baseline=reference.score if reference else None,
        tolerance_pp=reference.tolerance_pp if reference else None,
        two_sided=reference.two_sided if reference else None,
        points=[HistoryPointOut.model_validate(p, from_attributes=True) for p in points],
    )
