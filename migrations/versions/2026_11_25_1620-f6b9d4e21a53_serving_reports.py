"""Serving benchmark reports.

Revision ID: f6b9d4e21a53
Revises: e5a8c3d10f42
Create Date: 2026-11-25 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f6b9d4e21a53'
down_revision: str | None = 'e5a8c3d10f42'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'serving_reports',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('reasons', sa.JSON(), nullable=False),
        sa.Column('reference_run_id', sa.Integer(), nullable=True),
        sa.Column('thresholds', sa.JSON(), nullable=False),
        sa.Column('report', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ['run_id'], ['runs.id'], name=op.f('fk_serving_reports_run_id_runs'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('run_id', name=op.f('pk_serving_reports')),
    )


def downgrade() -> None:
    op.drop_table('serving_reports')
