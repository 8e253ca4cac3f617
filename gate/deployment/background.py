"""The deployment's background loops, run by its leader only: the reaper and the delivery sender.

Every API process runs `lead`: it tries for the lead every leader_renew_s and starts the loops once it holds it,
stops them if it loses it, and steps down when it stops, so that however many processes and hosts serve one
database, one sweeps leases and one sends deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time

from fastapi import FastAPI

from gate import db
from gate.db import transaction
from gate.deployment import leader
from gate.notifications import inbound, sender
from gate.runs import service as runs
from gate.settings import Settings

log = logging.getLogger("gate")


def _hold(app: FastAPI, holder: str) -> leader.Held | None:
    settings: Settings = app.state.settings
    with transaction(app.state.sessions, write=True) as session:
        held = leader.hold(session, holder, settings.leader_ttl_s)
        if held is not None and held.new and held.vacant_s > 0:
            # Nobody swept while the lead was vacant (the service was down, or its leader lost): workers may not
            # have reached it to renew, so that time is not theirs to lose.
            extended = runs.extend_leases(session, held.vacant_s)
            log.info("leader: vacant for %.0f s; %d running leases extended by that", held.vacant_s, extended)
        return held


def _release(app: FastAPI, holder: str) -> None:
    with transaction(app.state.sessions, write=True) as session:
        leader.release(session, holder)


async def lead(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    loops: list[asyncio.Task[None]] = []
    try:
        while True:
            try:
                held = await asyncio.to_thread(_hold, app, holder)
            except Exception as error:  # keep what runs: the loops ride out a database outage on their own
                if not db.unavailable(error):
                    log.exception("leader: taking or renewing the lead failed")
            else:
                if held is not None and not loops:
                    log.info("leader: %s runs the reaper and the delivery sender", holder)
                    loops = [asyncio.create_task(_reaper(app)), asyncio.create_task(sender.delivery_loop(app))]
                elif held is None and loops:
                    log.warning("leader: %s lost the lead; its reaper and delivery sender stop", holder)
                    for task in loops:
                        task.cancel()
                    loops = []
            await asyncio.sleep(settings.leader_renew_s)
    finally:
        for task in loops:
            task.cancel()
        if loops:
            with contextlib.suppress(Exception):  # unreachable database: the lead lapses after leader_ttl_s
                await asyncio.to_thread(_release, app, holder)
                log.info("leader: %s stepped down", holder)


def _reap(app: FastAPI, outage_s: float) -> tuple[int, int]:
    settings: Settings = app.state.settings
    with transaction(app.state.sessions, write=True) as session:
        if outage_s:
            # Workers could not renew while the database was away: that time is not theirs to lose.
            extended = runs.extend_leases(session, outage_s)
            log.info("reaper: database back after %.0f s; %d running leases extended by that", outage_s, extended)
        inbound.prune_deliveries(session, settings.inbound_delivery_keep_days)
        return runs.reap(session, settings.queued_ttl_s)


async def _reaper(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    away_since: float | None = None
    while True:
        try:
            # In a thread: waiting for SQLite's write lock on the event loop would stall every request.
            outage_s = 0.0 if away_since is None else time.monotonic() - away_since + settings.reaper_interval_s
            lost, expired = await asyncio.to_thread(_reap, app, outage_s)
            away_since = None
            if lost or expired:
                log.info("reaper: %d runs with lost leases, %d expired unclaimed", lost, expired)
        except Exception as error:  # the sweep must outlive a database blip; it logs and tries again
            if not db.unavailable(error):
                log.exception("reaper sweep failed")
            elif away_since is None:
                away_since = time.monotonic()
                log.warning("reaper: the database is unavailable: %s", str(error).splitlines()[0])
        await asyncio.sleep(settings.reaper_interval_s)
