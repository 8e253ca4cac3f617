"""Real HTTP peers of gate's outbound side, on loopback: a webhook receiver and a commit-status API."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

from standardwebhooks.webhooks import Webhook

# (status, headers) per request, in order; once the script is used up every request gets 200 / 201.
Script = list[tuple[int, dict[str, str]]]


class Receiver(ThreadingHTTPServer):
    """A CI system's endpoint: verifies gate's signatures with the reference library, fails on purpose."""

    daemon_threads = True

    def __init__(
        self, secret: str, script: Script, delays_s: list[float] | None = None, trickle_s: float | None = None
    ) -> None:
        self.webhook = Webhook(secret)
        self.script = list(script)
        self.delays_s = list(delays_s or [])  # per request, before answering: a slow receiver
        self.trickle_s = trickle_s  # set: every answer's body never ends (a byte every trickle_s)
        self.received: list[dict] = []
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            payload = self.server.webhook.verify(body, dict(self.headers))
            verified = True
        except Exception:
            payload, verified = None, False
        self.server.received.append(
            {"id": self.headers["webhook-id"], "verified": verified, "payload": payload, "host": self.headers["Host"]}
        )
        status, headers = self.server.script.pop(0) if self.server.script else (200, {})
        time.sleep(self.server.delays_s.pop(0) if self.server.delays_s else 0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if self.server.trickle_s is None:
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        self.end_headers()  # an endless body, a byte at a time, until the client hangs up
        with contextlib.suppress(OSError):
            for _ in range(int(30 / self.server.trickle_s)):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(self.server.trickle_s)


class StatusAPI(ThreadingHTTPServer):
    """The commit-status endpoints of GitHub (`/repos/O/R/statuses/SHA`) and GitLab
    (`/projects/ID/statuses/SHA`): records each request as it arrived (raw path, headers, JSON body)."""

    daemon_threads = True

    def __init__(self, script: Script) -> None:
        self.script = list(script)
        self.received: list[dict] = []
        super().__init__(("127.0.0.1", 0), _StatusHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def states(self) -> list[str]:
        return [r["body"]["state"] for r in self.received]


class _StatusHandler(BaseHTTPRequestHandler):
    server: StatusAPI

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, headers = self.server.script.pop(0) if self.server.script else (201, {})
        answer = json.dumps({"state": body.get("state")} if status < 300 else {"message": "refused"}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


Peer = TypeVar("Peer", bound=ThreadingHTTPServer)


@contextmanager
def serving(peer: Peer) -> Iterator[Peer]:
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    try:
        yield peer
    finally:
        peer.shutdown()
        peer.server_close()
