"""What the smoke tests share: variants of the tiny Qwen3 and real reports of `gate.checks.smoke.generate`.

- thinking: the tiny model whose chat template opens the reasoning block (as Qwen3-Thinking-2507's does), so every
  output starts inside it;
- silent: the tiny model with its final norm zeroed (every logit 0: greedy decoding picks token 0) and token 0 among
  its stop tokens, so a greedy generation stops at once and produces nothing.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gate.checks.smoke import spec
from gate.worker.tiny_model import CHAT_TEMPLATE

THINKING_TEMPLATE = CHAT_TEMPLATE.replace("<|im_start|>assistant\n", "<|im_start|>assistant\n<think>\n")


def thinking(tiny: Path, out: Path) -> Path:
    shutil.copytree(tiny, out)
    (out / "chat_template.jinja").write_text(THINKING_TEMPLATE)
    return out


def silent(tiny: Path, out: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    with torch.no_grad():
        model.model.norm.weight.zero_()
    model.generation_config.eos_token_id = [0, model.config.eos_token_id]
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(out)
    return out


def generate(job: dict[str, Any], work: Path, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    """`python -m gate.checks.smoke.generate` on a job, as the worker starts it."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "job.json").write_text(json.dumps(job))
    argv = [python, "-m", "gate.checks.smoke.generate", str(work / "job.json"), str(work / "report.json")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


@functools.cache
def real_report(model: str, max_tokens: int = 16, temperature: float = 0.7, seed: int | None = 7) -> dict[str, Any]:
    """A report the hf backend generates for the model with the card's prompts (once per session and arguments)."""
    sampling = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
    checked = spec.check({"model": model, "sampling": sampling})
    work = Path(tempfile.mkdtemp(prefix="smoke-report-"))
    done = generate({"spec": checked, "model": model, "config_dir": model}, work)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads((work / "report.json").read_text())
    shutil.rmtree(work)
    return report
