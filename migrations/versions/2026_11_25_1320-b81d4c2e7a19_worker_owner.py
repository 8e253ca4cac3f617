"""A worker name belongs to the token that registered it; lease tokens are stored as their sha256 digests.

Revision ID: b81d4c2e7a19
Revises: a7c3e91f0d42
Create Date: 2026-11-25 13:20:00
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b81d4c2e7a19'
down_revision: str | None = 'a7c3e91f0d42'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('workers', sa.Column('token_name', sa.String(length=200), nullable=True))
    runs = sa.table('runs', sa.column('id', sa.Integer), sa.column('lease_token', sa.String))
    connection = op.get_bind()
    for run_id, token in connection.execute(sa.select(runs.c.id, runs.c.lease_token).where(runs.c.lease_token.is_not(None))).all():
        digest = hashlib.sha256(token.encode('utf-8', 'surrogatepass')).hexdigest()
        connection.execute(runs.update().where(runs.c.id == run_id).values(lease_token=digest))


def downgrade() -> None:
    op.drop_column('workers', 'token_name')
