"""Wake-ups across the API processes and hosts of a deployment: Postgres LISTEN/NOTIFY.

A transaction that queues a run, ends a running one or queues a notification sends NOTIFY on its channel
(gate.db.notify; Postgres delivers it at commit, so a woken process sees the row). Each process listens on one
connection of its own, in a thread, and wakes its waiting claims, watches and delivery sender. A waiter takes
its ticket before it looks at the database, so a notification that arrives in between is not lost. While the
listener is not connected, and always on SQLite (one host, no NOTIFY), waiters poll as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading

import psycopg
from sqlalchemy import Engine

from gate.db import CHANNELS, NOTIFY_SCOPE, is_sqlite

log = logging.getLogger("gate")
LISTENER_NAME = f"gate-listen-{os.getpid()}"  # pg_stat_activity's application_name of this process's listener
RECONNECT_S = 1.0  # seconds between tries to listen again after the connection was lost
STOP_CHECK_S = 1.0  # how often the listening thread looks whether it should stop


class Wakeups:
    def __init__(self, loop: asyncio.AbstractEventLoop, dsn: str | None) -> None:
        self._loop, self._dsn = loop, dsn
        self._events = {channel: asyncio.Event() for channel in CHANNELS}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = False  # False: waiters poll

    @classmethod
    def start(cls, engine: Engine, listen: bool = True) -> Wakeups:
        postgres = listen and not is_sqlite(engine)
        dsn = engine.url.set(drivername="postgresql").render_as_string(False) if postgres else None
        wakeups = cls(asyncio.get_running_loop(), dsn)
        if dsn is not None:
            wakeups._thread = threading.Thread(target=wakeups._listen, daemon=True, name="gate-listen")
            wakeups._thread.start()
        return wakeups

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_CHECK_S * 5)

    def ticket(self, channel: str) -> asyncio.Event:
        """Take before looking at the database; wait on it after."""
        return self._events[channel]

    async def wait(self, ticket: asyncio.Event, timeout_s: float, poll_s: float) -> None:
        """Until the ticket's channel is notified (or timeout_s); without a listener, poll_s at most."""
        if not self.listening:
            await asyncio.sleep(min(timeout_s, poll_s))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), timeout_s)

    def _fire(self, channel: str) -> None:
        """On the event loop: wake this channel's waiters; later waiters take a fresh ticket."""
        self._events[channel].set()
        self._events[channel] = asyncio.Event()

    def _fire_all(self) -> None:
        for channel in CHANNELS:
            self._fire(channel)

    def _listen(self) -> None:
        assert self._dsn is not None
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, application_name=LISTENER_NAME) as connection:
                    # the same search_path as the notifying sessions: the schema their payload names (db.notify)
                    [(scope,)] = connection.execute(f"SELECT {NOTIFY_SCOPE}").fetchall()
                    for channel in CHANNELS:
                        connection.execute(f"LISTEN {channel}")
                    self.listening = True
                    # anything notified while this process was not listening: its waiters look again
                    self._loop.call_soon_threadsafe(self._fire_all)
                    while not self._stop.is_set():
                        for note in connection.notifies(timeout=STOP_CHECK_S):
                            if note.payload == scope:  # not another schema's
                                self._loop.call_soon_threadsafe(self._fire, note.channel)
            except (psycopg.Error, RuntimeError) as error:  # RuntimeError: the event loop closed first
                if self.listening:
                    log.warning("wake-ups: listening stopped (%s); waiters poll", str(error).splitlines()[0])
                self.listening = False
                self._stop.wait(RECONNECT_S)
        self.listening = False
