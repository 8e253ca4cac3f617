"""Runs: the spine. The queue, claims, leases, cancels and attempts every check kind goes through."""
