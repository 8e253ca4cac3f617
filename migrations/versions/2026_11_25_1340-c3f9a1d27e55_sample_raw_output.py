"""Samples keep the model's raw output (reasoning included), for the run report's question browser.

Revision ID: c3f9a1d27e55
Revises: b81d4c2e7a19
Create Date: 2026-11-25 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3f9a1d27e55'
down_revision: str | None = 'b81d4c2e7a19'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('samples', sa.Column('raw_output', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('samples', 'raw_output')
