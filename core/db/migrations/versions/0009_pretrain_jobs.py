"""Self-supervised pre-training as a background job (issue 12): ``training_jobs.kind`` also
accepts ``pretrain`` (``python -m core pretrain classifier``, started from the Training page).

As in revision 0005, changing the CHECK constraint needs SQLite's copy-drop-rename rebuild of
``training_jobs``; with ``PRAGMA foreign_keys=ON`` dropping the old table would delete the
``job_progress`` rows (cascade) and clear ``job_workers.job_id`` (set null), so on SQLite both
are kept aside and put back. PostgreSQL swaps the constraint in place. The downgrade refuses
while a pre-training job exists.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KINDS = "kind IN ('classifier', 'sr', 'segmentation', 'embeddings', 'study_images')"
_NEW_KINDS = ("kind IN ('classifier', 'sr', 'segmentation', 'embeddings', 'study_images', "
              "'pretrain')")


def _training_jobs(kinds: str) -> sa.Table:
    """``training_jobs`` as revisions 0001 and 0007 made it, with the given kind constraint."""
    meta = sa.MetaData()
    sa.Table('users', meta, sa.Column('id', sa.Integer(), primary_key=True))
    table = sa.Table(
        'training_jobs', meta,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('host', sa.String(length=255), nullable=True),
        sa.Column('pid', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('progress', sa.JSON(), nullable=True),
        sa.Column('fraction', sa.Float(), nullable=False),
        sa.Column('result_version', sa.String(length=64), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('log_path', sa.String(length=1024), nullable=True),
        sa.Column('claimed_by', sa.String(length=255), nullable=True),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.CheckConstraint(kinds, name='ck_training_jobs_kind'),
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
                           name='ck_training_jobs_status'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name='fk_training_jobs_user_id_users', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_training_jobs'),
    )
    sa.Index('ix_training_jobs_status', table.c.status)
    return table


def _set_kinds(kinds: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        op.drop_constraint(op.f('ck_training_jobs_kind'), 'training_jobs', type_='check')
        op.create_check_constraint(op.f('ck_training_jobs_kind'), 'training_jobs', kinds)
        return
    op.execute('CREATE TABLE _job_progress_keep AS SELECT * FROM job_progress')
    op.execute('CREATE TABLE _job_workers_keep AS SELECT id, job_id FROM job_workers '
               'WHERE job_id IS NOT NULL')
    with op.batch_alter_table('training_jobs', copy_from=_training_jobs(kinds),
                              recreate='always') as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=16))
    op.execute('DELETE FROM job_progress')
    op.execute('INSERT INTO job_progress SELECT * FROM _job_progress_keep')
    op.execute('UPDATE job_workers SET job_id = (SELECT k.job_id FROM _job_workers_keep k '
               'WHERE k.id = job_workers.id) WHERE id IN (SELECT id FROM _job_workers_keep)')
    op.execute('DROP TABLE _job_progress_keep')
    op.execute('DROP TABLE _job_workers_keep')


def upgrade() -> None:
    _set_kinds(_NEW_KINDS)


def downgrade() -> None:
    n = op.get_bind().execute(sa.text(
        "SELECT COUNT(*) FROM training_jobs WHERE kind = 'pretrain'")).scalar()
    if n:
        raise RuntimeError(f"{n} pre-training job(s) exist, a kind revision 0008 does not "
                           "know; delete them first.")
    _set_kinds(_OLD_KINDS)
