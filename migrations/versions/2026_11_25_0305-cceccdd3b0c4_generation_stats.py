"""Runs record how many answers hit the generation cap (thinking models that never close their block).

Revision ID: cceccdd3b0c4
Revises: 01bca678fa43
Create Date: 2026-11-25 03:05:58.322633
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gate.db

revision: str = 'cceccdd3b0c4'
down_revision: str | None = '01bca678fa43'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('generation_stats', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('generation_stats')

