"""Notifiers of CI sources: a commit status on GitHub or GitLab, or a signed webhook, when a run ends."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.errors import InvalidInput, NotFound
from gate.notifications import commit_status, targets
from gate.notifications.models import CISource, Notifier

WEBHOOK = "webhook"
KINDS = (*commit_status.KINDS, WEBHOOK)


def bound_to(source_name: str, kind: str) -> str:
    """What a notifier's sealed token is bound to: a token copied to another notifier does not open."""
    return f"notifier\0{source_name}\0{kind}"


def _source(session: Session, name: str) -> CISource:
    source = session.scalar(select(CISource).where(CISource.name == name))
    if source is None:
        raise NotFound(f"no CI source named {name!r}")
    return source


def put(session: Session, source_name: str, kind: str, url: str, sealed_token: str | None) -> Notifier:
    """Add the source's notifier of this kind, or replace it (a new URL or a rotated token)."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    try:
        targets.web_host(url)  # admin-set: no allow-list, but a plain web URL all the same
    except targets.TargetRefused as exc:
        raise InvalidInput(str(exc), field="url") from None
    if kind in commit_status.KINDS and not sealed_token:
        raise InvalidInput("a commit-status notifier needs an API token", field="token")
    source = _source(session, source_name)
    notifier = session.scalar(select(Notifier).where(Notifier.source_id == source.id, Notifier.kind == kind))
    if notifier is None:
        notifier = Notifier(source_id=source.id, kind=kind)
        session.add(notifier)
    notifier.url, notifier.sealed_token = url, sealed_token
    session.flush()
    return notifier


def remove(session: Session, source_name: str, kind: str) -> None:
    source = _source(session, source_name)
    notifier = session.scalar(select(Notifier).where(Notifier.source_id == source.id, Notifier.kind == kind))
    if notifier is None:
        raise NotFound(f"CI source {source_name!r} has no {kind} notifier")
    session.delete(notifier)
    session.flush()


def of_source(session: Session, source_id: int | None) -> list[Notifier]:
    if source_id is None:
        return []
    return list(session.scalars(select(Notifier).where(Notifier.source_id == source_id).order_by(Notifier.id)))


def check_context(session: Session, source_id: int, ci: dict | None) -> None:
    """Refuse, before anything is created, a run whose commit statuses could not be posted."""
    for notifier in of_source(session, source_id):
        if notifier.kind in commit_status.KINDS:
            try:
                commit_status.status_url(
                    notifier.kind, notifier.url, (ci or {}).get("repository"), (ci or {}).get("commit")
                )
            except commit_status.UnusableContext as exc:
                raise InvalidInput(f"{exc} (this source posts commit statuses)", field="ci") from None


def listing(session: Session) -> list[tuple[CISource, list[Notifier]]]:
    sources = session.scalars(select(CISource).order_by(CISource.name))
    return [(source, of_source(session, source.id)) for source in sources]
