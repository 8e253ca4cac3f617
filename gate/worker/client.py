"""The worker's HTTP client: the only way a worker talks to gate. Retries with backoff while the server is
away; uploads are idempotent on the server, so a retry after a lost reply records nothing twice."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gate.worker.config import ClaimedRun

log = logging.getLogger("gate.worker")
RETRY_STATUSES = {429, 502, 503, 504}
DRAIN_RETRY_S = 10.0  # once the worker drains, a failing request is retried this much longer, not 10 minutes


class LeaseLost(Exception):
    """The server refused a write for this lease (409): cancelled, or handed to another attempt."""


class ServerRefused(Exception):
    """The server refused the request (4xx other than 409)."""


@dataclass
class Backoff:
    first_s: float = 0.5
    max_s: float = 30.0
    give_up_after_s: float = 600.0


class GateClient:
    def __init__(
        self,
        server: str,
        token: str,
        backoff: Backoff | None = None,
        timeout_s: float = 90.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )
        self.backoff = backoff or Backoff()
        self.stop = stop or threading.Event()  # set when the worker drains: retries are cut short

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> httpx.Response:
        delay, deadline = self.backoff.first_s, time.monotonic() + self.backoff.give_up_after_s
        drain_seen = False
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
                if response.status_code not in RETRY_STATUSES and response.status_code < 500:
                    break
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if self.stop.is_set() and not drain_seen:
                drain_seen, deadline = True, min(deadline, time.monotonic() + DRAIN_RETRY_S)
            if not retry or time.monotonic() + delay > deadline:
                raise ConnectionError(f"{method} {path} failed: {problem}")
            log.warning("%s %s: %s; retrying in %.1f s", method, path, problem, delay)
            self.stop.wait(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff.max_s)
        if response.status_code == 409:
            raise LeaseLost(response.json().get("detail", "lease lost"))
        if response.status_code >= 400:
            raise ServerRefused(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response

    def claim(
        self, name: str, backend: str, labels: list[str], info: dict[str, Any], wait_s: float, draining: bool = False
    ) -> ClaimedRun | None:
        body = {
            "name": name,
            "backend": backend,
            "labels": labels,
            "info": info,
            "wait_s": wait_s,
            "draining": draining,
        }
        response = self._request("POST", "/api/v1/workers/claim", json=body, timeout=wait_s + 30)
        claimed: ClaimedRun | None = None if response.status_code == 204 else response.json()
        return claimed

    def heartbeat(
        self,
        run_id: int,
        lease: str,
        done: int | None,
        total: int | None,
        log_tail: str,
        estimate: dict[str, Any] | None = None,
        retry: bool = False,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        body = {"lease": lease, "done": done, "total": total, "log_tail": log_tail, "estimate": estimate}
        path = f"/api/v1/workers/runs/{run_id}/heartbeat"
        timeout = self.http.timeout if timeout_s is None else httpx.Timeout(timeout_s)
        return self._request("POST", path, json=body, retry=retry, timeout=timeout).json()

    def watch(self, run_id: int, lease: str, wait_s: float) -> str:
        response = self._request(
            "GET",
            f"/api/v1/workers/runs/{run_id}/watch",
            retry=False,
            params={"wait_s": wait_s},
            headers={"X-Gate-Lease": lease},  # not in the URL: access logs keep URLs
            timeout=wait_s + 30,
        )
        return response.json()["state"]

    def complete(
        self,
        run_id: int,
        lease: str,
        results: Path,
        samples: list[Path],
        environment: dict[str, Any],
        log_tail: str,
        model_fingerprint: str | None = None,
    ) -> dict[str, Any]:
        files = [("results", (results.name, results.read_bytes(), "application/json"))]
        files += [("samples", (p.name, p.read_bytes(), "application/x-ndjson")) for p in samples]
        data = {"lease": lease, "environment": json.dumps(environment), "log_tail": log_tail}
        if model_fingerprint is not None:
            data["model_fingerprint"] = model_fingerprint
        return self._request("POST", f"/api/v1/workers/runs/{run_id}/complete", files=files, data=data).json()

    def upload(self, run_id: int, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """A check kind's JSON result for this run's lease (`POST /workers/runs/{id}/{kind}`); replays are safe."""
        return self._request("POST", f"/api/v1/workers/runs/{run_id}/{kind}", json=body).json()

    def fail(
        self,
        run_id: int,
        lease: str,
        reason: str,
        kind: str,
        log_tail: str,
        environment: dict[str, Any] | None = None,
        model_fingerprint: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "lease": lease,
            "reason": reason[:10_000],
            "kind": kind,
            "log_tail": log_tail,
            "environment": environment,
        }
        if model_fingerprint is not None:
            body["model_fingerprint"] = model_fingerprint
        return self._request("POST", f"/api/v1/workers/runs/{run_id}/fail", json=body).json()

    def release(self, run_id: int, lease: str) -> dict[str, Any]:
        return self._request("POST", f"/api/v1/workers/runs/{run_id}/release", json={"lease": lease}).json()
