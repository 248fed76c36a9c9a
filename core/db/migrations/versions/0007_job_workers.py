"""Training on worker machines (issue 17): job claims, cancel requests, worker heartbeats.

- ``training_jobs``: ``claimed_by`` (the worker's name, ``host:pid``, or the process that
  started the job directly), ``claimed_at``, ``cancel_requested`` (set by ``cancel_job``; the
  worker running the job SIGTERMs its training process when it sees it).
- ``job_workers``: one row per ``python -m core worker`` process with its heartbeat, the kinds
  it takes, the job it runs and when it stopped.

Only plain columns are added to ``training_jobs`` (no index, constraint or foreign key), so
SQLite adds and drops them with ``ALTER TABLE`` and the table is never rebuilt (no cascade to
``job_progress``). Existing jobs get ``cancel_requested = false`` and no claim.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('training_jobs', sa.Column('claimed_by', sa.String(length=255), nullable=True))
    op.add_column('training_jobs', sa.Column('claimed_at', sa.DateTime(), nullable=True))
    op.add_column('training_jobs', sa.Column('cancel_requested', sa.Boolean(), nullable=False,
                                             server_default=sa.false()))
    op.create_table('job_workers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('kinds', sa.JSON(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.Column('stopped_at', sa.DateTime(), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('jobs_done', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['training_jobs.id'],
                            name=op.f('fk_job_workers_job_id_training_jobs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_workers'))
    )
    op.create_index(op.f('ix_job_workers_name'), 'job_workers', ['name'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_workers_name'), table_name='job_workers')
    op.drop_table('job_workers')
    op.drop_column('training_jobs', 'cancel_requested')
    op.drop_column('training_jobs', 'claimed_at')
    op.drop_column('training_jobs', 'claimed_by')
