"""Qualifications: a plan's checks for one model, each carried out by a run; CI deliveries may start one.

Revision ID: b2d3f4a51627
Revises: a1c2e3f40516
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import gate.db
from alembic import op

revision: str = 'b2d3f4a51627'
down_revision: str | None = 'a1c2e3f40516'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'qualifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('model', sa.String(length=500), nullable=False),
        sa.Column('backend', sa.String(length=32), nullable=False),
        sa.Column('plan', sa.String(length=64), nullable=False),
        sa.Column('request', sa.JSON(), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('baseline_id', sa.Integer(), nullable=True),
        sa.Column('origin', sa.String(length=16), nullable=False),
        sa.Column('submitted_by', sa.String(length=200), nullable=True),
        sa.Column('ci_context', sa.JSON(), nullable=True),
        sa.Column('idempotency_key', sa.String(length=200), nullable=True),
        sa.Column('request_fingerprint', sa.String(length=64), nullable=False),
        sa.Column('created_at', gate.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['baseline_id'], ['baselines.id'], name=op.f('fk_qualifications_baseline_id_baselines')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_qualifications')),
        sa.UniqueConstraint('idempotency_key', name=op.f('uq_qualifications_idempotency_key')),
    )
    op.create_table(
        'qualification_checks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('qualification_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('gated', sa.Boolean(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['qualification_id'], ['qualifications.id'],
            name=op.f('fk_qualification_checks_qualification_id_qualifications'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['run_id'], ['runs.id'], name=op.f('fk_qualification_checks_run_id_runs'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_qualification_checks')),
        sa.UniqueConstraint('qualification_id', 'name', name=op.f('uq_qualification_checks_qualification_id_name')),
        sa.UniqueConstraint('run_id', name=op.f('uq_qualification_checks_run_id')),
    )
    with op.batch_alter_table('inbound_deliveries') as batch:
        batch.alter_column('run_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('qualification_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f('fk_inbound_deliveries_qualification_id_qualifications'), 'qualifications',
            ['qualification_id'], ['id'], ondelete='CASCADE',
        )


def downgrade() -> None:
    with op.batch_alter_table('inbound_deliveries') as batch:
        batch.drop_constraint('fk_inbound_deliveries_qualification_id_qualifications', type_='foreignkey')
        batch.drop_column('qualification_id')
        batch.alter_column('run_id', existing_type=sa.Integer(), nullable=False)
    op.drop_table('qualification_checks')
    op.drop_table('qualifications')
