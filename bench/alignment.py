"""Cost of an alignment probe side and its comparison on the tiny Qwen3: time, peak memory and output size as
texts x positions x k grow (synthetic token ids; hf FP32 on CPU, one fresh process per side as the worker runs it).

    .venv/bin/python bench/alignment.py [--shapes 10x16,8x256,32x512] [--ks 20,100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate.checks.alignment import metrics
from gate.worker.tiny_model import build

GSM8K = Path(os.environ.get("GATE_GSM8K_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"))
VOCAB_IDS = 2000  # below the tiny tokenizer's 2048 ids


def side(model: Path, work: Path, texts: int, length: int, k: int) -> tuple[float, int, Path]:
    """Run one hf FP32 side in its own process: seconds, its peak RSS in bytes, and the record's path."""
    rng = random.Random(0)
    ids = [[rng.randrange(VOCAB_IDS) for _ in range(length)] for _ in range(texts)]
    spec = {
        "backend": "hf",
        "model": str(model),
        "dtype": "float32",
        "device": "cpu",
        "top_k": k,
        "texts": [{"name": f"t{i}", "kind": "text", "token_ids": t} for i, t in enumerate(ids)],
    }
    (work / "spec.json").write_text(json.dumps(spec))
    out = work / f"side-{texts}x{length}-k{k}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "gate.checks.alignment.sides", str(work / "spec.json"), str(out)], env=env
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the side failed with status {status}")
    return seconds, usage.ru_maxrss * 1024, out


def compare_cost(record_path: Path, full: bool) -> tuple[float, int]:
    """Seconds and peak traced bytes of comparing the record with itself, on full logits or the top-k union."""
    record = json.loads(record_path.read_text())
    logits = np.load(record["logits_file"], mmap_mode="r") if full else None
    tracemalloc.start()
    started = time.monotonic()
    metrics.compare(record, record, logits, logits)
    seconds = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="10x16,8x256,32x512", help="TEXTSxTOKENS,...")
    parser.add_argument("--ks", default="20,100")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build(work / "tiny", GSM8K)
        print(
            "| texts x tokens | k | positions | side s | side peak RSS | record JSON | logits .npy "
            "| compare full s / peak | compare top-k s / peak |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for shape in args.shapes.split(","):
            texts, length = (int(x) for x in shape.split("x"))
            for k in (int(x) for x in args.ks.split(",")):
                seconds, rss, out = side(model, work, texts, length, k)
                logits = Path(json.loads(out.read_text())["logits_file"])
                full_s, full_peak = compare_cost(out, True)
                union_s, union_peak = compare_cost(out, False)
                print(
                    f"| {texts} x {length} | {k} | {texts * (length - 1)} | {seconds:.1f} | {rss / 2**20:.0f} MiB "
                    f"| {out.stat().st_size / 2**20:.1f} MiB | {logits.stat().st_size / 2**20:.1f} MiB "
                    f"| {full_s:.2f} / {full_peak / 2**20:.1f} MiB | {union_s:.2f} / {union_peak / 2**20:.1f} MiB |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
