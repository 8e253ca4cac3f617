"""The leader row of the deployment's background loops.

Revision ID: d4e5f6a71829
Revises: c3e4f5a61728
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gate.db import UTCDateTime

revision: str = 'd4e5f6a71829'
down_revision: str | None = 'c3e4f5a61728'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    leaders = op.create_table(
        'leaders',
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('holder', sa.String(length=200), nullable=True),
        sa.Column('expires_at', UTCDateTime(), nullable=True),
        sa.Column('term', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_leaders')),
    )
    op.bulk_insert(leaders, [{'name': 'background', 'holder': None, 'expires_at': None, 'term': 0}])


def downgrade() -> None:
    op.drop_table('leaders')
