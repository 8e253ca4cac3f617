"""The model fingerprint's cost: a 1 GB and an 8 GB folder of safetensors-like files (random bytes, a config and a
tokenizer beside them), fingerprinted without an index and with a hit, each against a plain sequential read of
the same files measured in the same run. Page cache cold (the files' pages evicted with posix_fadvise) and warm.

    .venv/bin/python bench/fingerprint.py [--sizes-gb 1,8] [--repeat 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate.worker.fingerprint import RACY_NS, fingerprint

SHARD_BYTES = 2 << 30  # at most 2 GiB per shard: an 8 GB checkpoint comes as 4 shards
WRITE_CHUNK = 64 << 20
READ_CHUNK = 8 << 20


def make_model(root: Path, total: int) -> list[Path]:
    """Shards of pseudo-random bytes (blake3's output stream: as incompressible as weights) plus small files."""
    root.mkdir(parents=True)
    shards = -(-total // SHARD_BYTES)
    paths = []
    for i in range(shards):
        path = root / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        size = min(SHARD_BYTES, total - i * SHARD_BYTES)
        stream = blake3.blake3(f"shard {i}".encode())
        with path.open("wb") as f:
            for offset in range(0, size, WRITE_CHUNK):
                f.write(stream.digest(min(WRITE_CHUNK, size - offset), seek=offset))
        paths.append(path)
    for name, text in (("config.json", '{"model_type": "qwen3"}'), ("tokenizer.json", "{}"), ("README.md", "card")):
        (root / name).write_text(text)
    paths += [root / "config.json", root / "tokenizer.json"]
    for path in paths:
        with path.open("rb") as f:
            os.fsync(f.fileno())
    return paths


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (clean pages only: they were fsynced), so the next read hits disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_all(paths: list[Path]) -> None:
    """The baseline: every byte read once, in order, and thrown away (cat > /dev/null)."""
    buffer = memoryview(bytearray(READ_CHUNK))
    for path in paths:
        with path.open("rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def timed(action: Callable[[], object], before: Callable[[], None] = lambda: None, repeat: int = 3) -> float:
    """Median wall time of action, with before() run untimed ahead of each repetition."""
    times = []
    for _ in range(repeat):
        before()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(root: Path, paths: list[Path], index: Path, repeat: int) -> list[tuple[str, float, float]]:
    """(case, seconds, ratio to the sequential read in the same page-cache state)."""

    def no_index() -> None:
        index.unlink(missing_ok=True)

    def cold_no_index() -> None:
        no_index()
        evict(paths)

    rows = []
    read_cold = timed(lambda: read_all(paths), lambda: evict(paths), repeat)
    rows.append(("page cache cold: sequential read (baseline)", read_cold, 1.0))
    seconds = timed(lambda: fingerprint(root, index), cold_no_index, repeat)
    rows.append(("page cache cold: fingerprint, no index", seconds, seconds / read_cold))
    read_warm = timed(lambda: read_all(paths), repeat=repeat)
    rows.append(("page cache warm: sequential read (baseline)", read_warm, 1.0))
    seconds = timed(lambda: fingerprint(root, index), no_index, repeat)
    rows.append(("page cache warm: fingerprint, no index", seconds, seconds / read_warm))
    fingerprint(root, index)  # the index is written (the files are older than the racy window)
    assert fingerprint(root, index).hashed == (), "the index was not used"
    seconds = timed(lambda: fingerprint(root, index), lambda: evict(paths), repeat)
    rows.append(("index hit (any page cache)", seconds, seconds / read_cold))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-gb", default="1,8", help="folder sizes in GB (10^9 bytes), comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the folders are made")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU(s); blake3 {blake3.__version__}; median of {args.repeat}")
    print("| folder | case | seconds | GB/s | ratio to the read |")
    print("|---|---|---|---|---|")
    for size_gb in (float(s) for s in args.sizes_gb.split(",")):
        work = Path(tempfile.mkdtemp(prefix="gate-bench-fingerprint-", dir=args.dir))
        try:
            total = int(size_gb * 1e9)
            paths = make_model(work / "model", total)
            time.sleep(RACY_NS / 1e9)  # older than the racy window, so the index may keep the digests
            for case, seconds, ratio in measure(work / "model", paths, work / "fingerprints.json", args.repeat):
                rate = "" if case.startswith("index hit") else f"{total / seconds / 1e9:.2f}"
                print(f"| {size_gb:g} GB, {len(paths) - 2} shard(s) | {case} | {seconds:.4f} | {rate} | {ratio:.4f} |")
        finally:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
