"""Two commits of gate side by side on one seeded database, measured interleaved: what a change buys.

The base commit is checked out in a temporary git worktree and served beside the working tree, one API process
each, on the same database (both must have the same migrations). Each round measures both servers (the order
alternates) on bench/mlflow_peer.py's requests at 1 and 8 clients; a figure is the ratio of their median latencies
within a round (base over working tree: above 1, the change is faster), the median over the rounds and their range.

    .venv/bin/python bench/versus.py --base 97764f7 [--db sqlite --db postgres] [--operation "run by id"] [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api_latency import seed, seed_runs
from bench.mlflow_peer import OPERATIONS, Call, gate_calls, measure
from bench.support import fresh_database, gate_server, port_of, token

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    place = Path(tempfile.mkdtemp(prefix="gate-base-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(place), commit], check=True)
    try:
        migrations = [sorted(p.name for p in (tree / "migrations" / "versions").glob("*.py")) for tree in (ROOT, place)]
        if migrations[0] != migrations[1]:
            raise SystemExit(f"{commit} has other migrations than the working tree: one database cannot serve both")
        yield place
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(place)], check=True)


def checked(tree: Path) -> Path:
    """The tree, once its own `gate` package is the one a server started there imports, not the venv's."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    loaded = subprocess.run(
        [sys.executable, "-c", "import gate; print(gate.__file__)"], cwd=tree, env=env, capture_output=True, text=True
    ).stdout.strip()
    if not Path(loaded).is_relative_to(tree):
        raise SystemExit(f"a server for {tree} would run gate from {loaded}")
    return tree


def duel(
    ports: dict[str, int], call: Call, clients: int, requests: int, rounds: int
) -> tuple[float, float, list[float]]:
    """Both servers' median latencies (ms, median over the rounds) and the per-round ratios base / new."""
    for port in ports.values():  # warm-up
        measure(port, call, clients, 10, offset=90_000)
    medians: dict[str, list[float]] = {"base": [], "new": []}
    for round_ in range(rounds):
        for name in ["base", "new"] if round_ % 2 == 0 else ["new", "base"]:
            latencies = measure(ports[name], call, clients, requests, offset=round_ * 1000 + clients * 100)
            medians[name].append(statistics.median(latencies))
    ratios = [b / n for b, n in zip(medians["base"], medians["new"], strict=True)]
    return statistics.median(medians["base"]) * 1000, statistics.median(medians["new"]) * 1000, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit to compare the working tree with")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=150, help="per operation and round with 1 client (8: /5)")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--operation", action="append", choices=OPERATIONS)
    args = parser.parse_args()
    print("$ bench/versus.py " + " ".join(sys.argv[1:]), flush=True)
    runs = seed_runs(args.runs)
    models = sorted({r.model for r in runs})
    picks = random.Random(1).sample(runs, min(len(runs), 2000))
    with tempfile.TemporaryDirectory() as tmp, worktree(args.base) as base:
        for kind in args.db or ["sqlite", "postgres"]:
            with (
                fresh_database(kind, Path(tmp)) as url,
                gate_server(url, Path(tmp) / "base.log", tree=checked(base)) as base_url,
                gate_server(url, Path(tmp) / "new.log", tree=checked(ROOT)) as new_url,
            ):
                seed(url, runs)
                calls = gate_calls(token(url, "bench", "submit"), [r.id for r in picks], models)
                ports = {"base": port_of(base_url), "new": port_of(new_url)}
                for operation in args.operation or list(OPERATIONS):
                    for clients in (1, 8):
                        requests = args.requests if clients == 1 else max(1, args.requests // 5)
                        base_ms, new_ms, ratios = duel(ports, calls[operation], clients, requests, args.rounds)
                        print(
                            f"{kind:8s} {operation:12s} {clients} client(s): base {base_ms:.2f} ms, "
                            f"new {new_ms:.2f} ms, base/new {statistics.median(ratios):.2f} "
                            f"(rounds {min(ratios):.2f}-{max(ratios):.2f})",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
