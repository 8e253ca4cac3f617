"""Serving performance: the model served by vLLM, driven by vLLM's own benchmark client, and gated."""
