"""A lease kept alive on a thread for a whole attempt: model download, evaluation, statistics and upload alike,
so that no slow step outlives the lease the server granted."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from gate.worker.client import GateClient, LeaseLost, ServerRefused
from gate.worker.process import Evaluation

log = logging.getLogger("gate.worker")


class Renewal:
    """Heartbeats every `interval_s` until the block ends or the server refuses the lease.

    `renewed_at` (monotonic) is when the last accepted renewal was sent: the server's lease runs from no earlier."""

    def __init__(self, client: GateClient, run_id: int, lease: str, interval_s: float, renewed_at: float) -> None:
        self.client, self.run_id, self.lease, self.interval_s = client, run_id, lease, interval_s
        self.renewed_at = renewed_at
        self.refused: str | None = None  # "cancelled" or "lost" once the server said so
        self.evaluation: Evaluation | None = None  # reported as progress once it runs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"renew-{run_id}", daemon=True)

    def __enter__(self) -> Renewal:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            sent = time.monotonic()
            evaluation = self.evaluation
            try:
                self.client.heartbeat(
                    self.run_id,
                    self.lease,
                    evaluation.done if evaluation else None,
                    evaluation.total if evaluation else None,
                    evaluation.log_tail if evaluation else "",
                    evaluation.estimate if evaluation else None,
                    timeout_s=self.interval_s,  # a hung request gives way to the next beat
                )
                self.renewed_at = sent
            except LeaseLost as exc:
                self.refused = "cancelled" if "cancelled" in str(exc) else "lost"
                return
            except (ConnectionError, ServerRefused) as exc:  # the fence decides when this has gone on too long
                log.warning("run %s: heartbeat failed (%s)", self.run_id, exc)
