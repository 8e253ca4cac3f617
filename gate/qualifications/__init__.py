"""Qualifications: one request runs every check of a plan for one model, one report reads like the model card."""
