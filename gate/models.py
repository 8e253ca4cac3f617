"""Every table, for Alembic and the metadata: each domain's models, and each check kind's through the registry."""

from importlib import import_module

from gate.checks import KINDS

DOMAINS = (
    "gate.runs",
    "gate.deployment",
    "gate.baselines",
    "gate.auth",
    "gate.notifications",
    "gate.qualifications",
    *KINDS.values(),
)

for package in DOMAINS:
    import_module(f"{package}.models")
