"""Initial schema: baselines, runs, scores, verdicts, samples, artifacts, workers, API tokens.

Revision ID: 01bca678fa43
Revises: 
Create Date: 2026-11-25 02:54:49.387555
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gate.db

revision: str = '01bca678fa43'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', gate.db.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', gate.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('name', name=op.f('uq_api_tokens_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_table('baselines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=500), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('from_run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', gate.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_baselines')),
    sa.UniqueConstraint('name', name=op.f('uq_baselines_name'))
    )
    op.create_table('workers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.Column('draining', sa.Boolean(), nullable=False),
    sa.Column('registered_at', gate.db.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', gate.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers')),
    sa.UniqueConstraint('name', name=op.f('uq_workers_name'))
    )
    op.create_table('baseline_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('baseline_id', sa.Integer(), nullable=False),
    sa.Column('benchmark', sa.String(length=100), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('metric', sa.String(length=200), nullable=False),
    sa.Column('num_fewshot', sa.Integer(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('stderr', sa.Float(), nullable=True),
    sa.Column('n_samples', sa.Integer(), nullable=True),
    sa.Column('tolerance_pp', sa.Float(), nullable=False),
    sa.Column('two_sided', sa.Boolean(), nullable=False),
    sa.Column('eval_profile', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['baseline_id'], ['baselines.id'], name=op.f('fk_baseline_scores_baseline_id_baselines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_baseline_scores')),
    sa.UniqueConstraint('baseline_id', 'task', name=op.f('uq_baseline_scores_baseline_id_task'))
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=500), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('tasks', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('baseline_id', sa.Integer(), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', gate.db.UTCDateTime(), nullable=True),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created_at', gate.db.UTCDateTime(), nullable=False),
    sa.Column('started_at', gate.db.UTCDateTime(), nullable=True),
    sa.Column('finished_at', gate.db.UTCDateTime(), nullable=True),
    sa.Column('submitted_by', sa.String(length=200), nullable=True),
    sa.Column('ci_context', sa.JSON(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('failure_kind', sa.String(length=16), nullable=True),
    sa.Column('progress_done', sa.Integer(), nullable=True),
    sa.Column('progress_total', sa.Integer(), nullable=True),
    sa.Column('log_tail', sa.Text(), nullable=True),
    sa.Column('environment', sa.JSON(), nullable=True),
    sa.Column('eval_profile', sa.JSON(), nullable=True),
    sa.Column('result_fingerprint', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['baseline_id'], ['baselines.id'], name=op.f('fk_runs_baseline_id_baselines')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_runs_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_runs_idempotency_key'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_baseline_id_id', ['baseline_id', 'id'], unique=False)
        batch_op.create_index('ix_runs_model_id', ['model', 'id'], unique=False)
        batch_op.create_index('ix_runs_status_priority_id', ['status', 'priority', 'id'], unique=False)
        batch_op.create_index('ix_runs_verdict_id', ['verdict', 'id'], unique=False)

    # baselines <-> runs reference each other: the second foreign key is added once both exist.
    with op.batch_alter_table('baselines', schema=None) as batch_op:
        batch_op.create_foreign_key(op.f('fk_baselines_from_run_id_runs'), 'runs', ['from_run_id'], ['id'])

    op.create_table('artifacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('content_gz', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_artifacts_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_artifacts')),
    sa.UniqueConstraint('run_id', 'name', name=op.f('uq_artifacts_run_id_name'))
    )
    op.create_table('run_tasks',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_tasks_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'task', name=op.f('pk_run_tasks'))
    )
    with op.batch_alter_table('run_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_run_tasks_task_run_id', ['task', 'run_id'], unique=False)

    op.create_table('samples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('filter', sa.String(length=100), nullable=False),
    sa.Column('doc_id', sa.Integer(), nullable=False),
    sa.Column('doc_hash', sa.String(length=64), nullable=False),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('filtered_answer', sa.Text(), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('question', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_samples_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_samples')),
    sa.UniqueConstraint('run_id', 'task', 'filter', 'doc_id', name=op.f('uq_samples_run_id_task_filter_doc_id'))
    )
    op.create_table('scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('metric', sa.String(length=200), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('stderr', sa.Float(), nullable=True),
    sa.Column('n_samples', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_scores_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scores')),
    sa.UniqueConstraint('run_id', 'task', 'metric', name=op.f('uq_scores_run_id_task_metric'))
    )
    op.create_table('verdicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('baseline_score_id', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('delta_pp', sa.Float(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['baseline_score_id'], ['baseline_scores.id'], name=op.f('fk_verdicts_baseline_score_id_baseline_scores')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_verdicts_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verdicts')),
    sa.UniqueConstraint('run_id', 'task', name=op.f('uq_verdicts_run_id_task'))
    )


def downgrade() -> None:
    op.drop_table('verdicts')
    op.drop_table('scores')
    op.drop_table('samples')
    with op.batch_alter_table('run_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_run_tasks_task_run_id')

    op.drop_table('run_tasks')
    op.drop_table('artifacts')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_verdict_id')
        batch_op.drop_index('ix_runs_status_priority_id')
        batch_op.drop_index('ix_runs_model_id')
        batch_op.drop_index('ix_runs_baseline_id_id')

    with op.batch_alter_table('baselines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_baselines_from_run_id_runs'), type_='foreignkey')

    op.drop_table('runs')
    op.drop_table('baseline_scores')
    op.drop_table('workers')
    op.drop_table('baselines')
    op.drop_table('api_tokens')
