"""Notifiers of CI sources (commit statuses, webhooks); runs remember their source; notifications their kind.

Revision ID: 5e1f0c2a9b7d
Revises: 8d9475f422ce
Create Date: 2026-11-25 05:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gate.db

revision: str = '5e1f0c2a9b7d'
down_revision: str | None = '8d9475f422ce'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _add_reference(table: str, column: str, target: str, ondelete: str) -> None:
    """A nullable foreign-key column. SQLite takes it inline; batch mode would copy and drop the table, and
    dropping `runs` with foreign keys on would cascade into every child row."""
    name = f"fk_{table}_{column}_{target}"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} INTEGER "
            f"CONSTRAINT {name} REFERENCES {target} (id) ON DELETE {ondelete}"
        )
    else:
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(name, table, target, [column], ['id'], ondelete=ondelete)


def upgrade() -> None:
    op.create_table('notifiers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('sealed_token', sa.Text(), nullable=True),
    sa.Column('created_at', gate.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['ci_sources.id'], name=op.f('fk_notifiers_source_id_ci_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifiers')),
    sa.UniqueConstraint('source_id', 'kind', name=op.f('uq_notifiers_source_id_kind'))
    )
    _add_reference('runs', 'source_id', 'ci_sources', 'SET NULL')
    op.add_column('notifications', sa.Column('kind', sa.String(length=16), server_default='webhook', nullable=False))
    _add_reference('notifications', 'notifier_id', 'notifiers', 'CASCADE')


def downgrade() -> None:
    for table, column in (('notifications', 'notifier_id'), ('runs', 'source_id')):
        if op.get_bind().dialect.name != "sqlite":
            op.drop_constraint(f"fk_{table}_{column}_{'notifiers' if column == 'notifier_id' else 'ci_sources'}", table)
        op.drop_column(table, column)
    op.drop_column('notifications', 'kind')
    op.drop_table('notifiers')
