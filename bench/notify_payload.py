"""What naming the deployment's schema in each NOTIFY costs (db.notify, Postgres): one transaction that notifies
and commits, with the schema as payload against an empty one, interleaved in rounds on one connection.

    .venv/bin/python bench/notify_payload.py [--rounds 7] [--commits 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import fresh_database
from gate import db


def empty_payload(session: Session, channel: str) -> None:  # what db.notify sent before da252bd
    session.execute(select(func.pg_notify(channel, "")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--commits", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, fresh_database("postgres", Path(workdir)) as url:
        engine = db.make_engine(url)
        ways = {"empty payload": empty_payload, "schema payload": db.notify}
        ratios = []
        with Session(engine) as session:
            for _ in range(args.rounds):
                took = {}
                for name, notify in ways.items():
                    started = time.perf_counter()
                    for _ in range(args.commits):
                        notify(session, "gate_bench")
                        session.commit()
                    took[name] = (time.perf_counter() - started) / args.commits * 1000
                ratios.append(took["schema payload"] / took["empty payload"])
                print("  ".join(f"{name} {ms:.3f} ms" for name, ms in took.items()), f" ratio {ratios[-1]:.3f}")
        engine.dispose()
    print(f"schema payload over empty payload, median of {args.rounds} rounds: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
