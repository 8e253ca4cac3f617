"""Serving performance: the model served by vLLM, driven by `vllm bench serve`, judged against a reference run."""
