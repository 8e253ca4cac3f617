"""The tiny models alignment tests share: the tiny Qwen3, a copy with noise in one layer, another tokenizer."""

from __future__ import annotations

from pathlib import Path

from gate.worker import tiny_model
from tests.conftest import GSM8K_DIR


def build(root: Path) -> dict[str, str]:
    """tiny, perturbed (noise in layer 1's MLP: fails the gate) and other (a tokenizer learnt from other text)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tiny = tiny_model.build(root / "tiny", GSM8K_DIR)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        weight = model.model.layers[1].mlp.down_proj.weight
        weight += 0.05 * torch.randn(weight.shape, generator=generator)
    model.save_pretrained(root / "perturbed")
    AutoTokenizer.from_pretrained(tiny).save_pretrained(root / "perturbed")
    other = tiny_model.build(root / "other", None)  # its tokenizer learns from one repeated sentence, not GSM8K
    return {"tiny": str(tiny), "perturbed": str(root / "perturbed"), "other": str(other)}
