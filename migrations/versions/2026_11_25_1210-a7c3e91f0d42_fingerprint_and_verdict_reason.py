"""Runs record the fingerprint of the weights they evaluated, and why their verdict is what it is.

Revision ID: a7c3e91f0d42
Revises: 5e1f0c2a9b7d
Create Date: 2026-11-25 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a7c3e91f0d42'
down_revision: str | None = '5e1f0c2a9b7d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ADD COLUMN: batch mode would copy `runs`, and with foreign keys on that cascades into its children
    op.add_column('runs', sa.Column('model_fingerprint', sa.String(length=64), nullable=True))
    op.add_column('runs', sa.Column('verdict_reason', sa.Text(), nullable=True))
    op.create_index('ix_runs_model_fingerprint', 'runs', ['model_fingerprint'])


def downgrade() -> None:
    op.drop_index('ix_runs_model_fingerprint', 'runs')
    op.drop_column('runs', 'verdict_reason')
    op.drop_column('runs', 'model_fingerprint')
