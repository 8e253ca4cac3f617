"""Baselines: files of reference scores, and runs promoted to references."""
