"""Runs carry their kind of check (gate.checks.KINDS); every run so far is an lm-eval accuracy run.

Revision ID: d4e7b2a91c30
Revises: c3f9a1d27e55
Create Date: 2026-11-25 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e7b2a91c30'
down_revision: str | None = 'c3f9a1d27e55'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=32), server_default='accuracy', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch_op:
        batch_op.drop_column('kind')
