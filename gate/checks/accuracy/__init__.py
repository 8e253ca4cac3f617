"""Accuracy: lm-eval runs scored per task and judged against a baseline within a tolerance."""
