"""Smoke outputs: the model card's sample outputs, generated through the chat template and recorded verbatim."""
