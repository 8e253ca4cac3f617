"""One leader per deployment, however many processes and hosts serve it: a lease in the database.

The leader renews its lease well before it expires; another process takes the lead only once the lease has
expired (its holder died or lost the database) or was released, with one compare-and-swap UPDATE on the term
whose row count decides. Leases are on the database's clock, so hosts with skewed clocks agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Update, update
from sqlalchemy.orm import Session

from gate.deployment.models import Leader
from gate.runs.service import lease_clock

BACKGROUND = "background"  # the reaper and the delivery sender


@dataclass(frozen=True)
class Held:
    new: bool  # this call took the lead (from nobody, or from a holder whose lease had run out)
    vacant_s: float  # how long nobody held it before this call took it: 0 for a renewal


def hold(session: Session, holder: str, ttl_s: float, name: str = BACKGROUND) -> Held | None:
    """Take or renew the lead for ttl_s seconds; None while another holder's lease runs."""
    now = lease_clock(session)
    row = session.get(Leader, name, populate_existing=True)
    if row is None:
        raise LookupError(f"no leader row {name!r}: the database is not migrated")
    renewal, term, expired_at = row.holder == holder, row.term, row.expires_at  # before the UPDATE refreshes row
    if not renewal and row.holder is not None and expired_at is not None and expired_at > now:
        return None
    result = _execute(
        session,
        update(Leader)
        .where(Leader.name == name, Leader.term == term)
        .values(holder=holder, expires_at=now + timedelta(seconds=ttl_s), term=Leader.term + (0 if renewal else 1)),
    )
    if result.rowcount != 1:  # another process changed the row since it was read: it leads
        return None
    if renewal:
        return Held(new=False, vacant_s=0.0)
    vacant = 0.0 if expired_at is None else (now - expired_at).total_seconds()
    return Held(new=True, vacant_s=max(vacant, 0.0))


def release(session: Session, holder: str, name: str = BACKGROUND) -> bool:
    """Step down (a process stopping): another takes the lead at its next try instead of after the lease."""
    now = lease_clock(session)
    result = _execute(
        session,
        update(Leader)
        .where(Leader.name == name, Leader.holder == holder)
        .values(holder=None, expires_at=now, term=Leader.term + 1),
    )
    return result.rowcount == 1


def _execute(session: Session, statement: Update) -> CursorResult[Any]:
    return cast(CursorResult[Any], session.execute(statement))
