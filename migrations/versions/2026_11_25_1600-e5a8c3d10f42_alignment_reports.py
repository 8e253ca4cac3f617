"""Alignment probe reports, and per-kind settings on baselines (e.g. the alignment thresholds).

Revision ID: e5a8c3d10f42
Revises: d4e7b2a91c30
Create Date: 2026-11-25 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e5a8c3d10f42'
down_revision: str | None = 'd4e7b2a91c30'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'alignment_reports',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('reasons', sa.JSON(), nullable=False),
        sa.Column('thresholds', sa.JSON(), nullable=False),
        sa.Column('report', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ['run_id'], ['runs.id'], name=op.f('fk_alignment_reports_run_id_runs'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('run_id', name=op.f('pk_alignment_reports')),
    )
    with op.batch_alter_table('baselines') as batch_op:
        batch_op.add_column(sa.Column('checks', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('baselines') as batch_op:
        batch_op.drop_column('checks')
    op.drop_table('alignment_reports')
