"""Case library (issue 9) and more background-job kinds (issues 9, 10, 11).

- ``cases``: one de-identified library image (pixels in the pixel store, this row describes
  them); ``case_embeddings``: its retrieval vector per classifier version.
- ``training_jobs.kind`` also accepts ``segmentation`` (U-Net training), ``embeddings`` (the
  retrieval index rebuild after a classifier is activated) and ``study_images`` (a reader
  study's condition images).

Changing a CHECK constraint needs SQLite's copy-drop-rename rebuild of ``training_jobs``. With
``PRAGMA foreign_keys=ON`` (every app connection) dropping the old table deletes its rows first,
which would cascade to ``job_progress`` (the loss curves). So on SQLite the progress rows are
copied aside before the rebuild and put back after it; the job rows themselves are copied by the
rebuild. PostgreSQL swaps the constraint in place. The downgrade refuses while a job of a new
kind exists (it would not fit the old constraint).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KINDS = "kind IN ('classifier', 'sr')"
_NEW_KINDS = "kind IN ('classifier', 'sr', 'segmentation', 'embeddings', 'study_images')"


def _training_jobs(kinds: str) -> sa.Table:
    """``training_jobs`` as revision 0001 made it, with the given kind constraint."""
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
    with op.batch_alter_table('training_jobs', copy_from=_training_jobs(kinds),
                              recreate='always') as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=16))
    op.execute('DELETE FROM job_progress')
    op.execute('INSERT INTO job_progress SELECT * FROM _job_progress_keep')
    op.execute('DROP TABLE _job_progress_keep')


def upgrade() -> None:
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=255), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('bit_depth', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=True),
    sa.Column('label_source', sa.String(length=16), nullable=True),
    sa.Column('modality', sa.String(length=16), nullable=True),
    sa.Column('body_part', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=120), nullable=False),
    sa.Column('source_path', sa.String(length=255), nullable=True),
    sa.Column('added_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('thumbnail', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['added_by'], ['users.id'], name=op.f('fk_cases_added_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('sha256', name=op.f('uq_cases_sha256'))
    )
    op.create_index(op.f('ix_cases_label'), 'cases', ['label'], unique=False)
    op.create_index(op.f('ix_cases_source'), 'cases', ['source'], unique=False)
    op.create_table('case_embeddings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'],
                            name=op.f('fk_case_embeddings_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_embeddings')),
    sa.UniqueConstraint('case_id', 'model_version',
                        name=op.f('uq_case_embeddings_case_id_model_version'))
    )
    op.create_index(op.f('ix_case_embeddings_case_id'), 'case_embeddings', ['case_id'],
                    unique=False)
    op.create_index(op.f('ix_case_embeddings_model_version'), 'case_embeddings',
                    ['model_version'], unique=False)
    _set_kinds(_NEW_KINDS)


def downgrade() -> None:
    n = op.get_bind().execute(sa.text(
        "SELECT COUNT(*) FROM training_jobs WHERE kind NOT IN ('classifier', 'sr')")).scalar()
    if n:
        raise RuntimeError(f"{n} background job(s) of a kind revision 0004 does not know "
                           "(segmentation, embeddings, study_images) exist; delete them first.")
    _set_kinds(_OLD_KINDS)
    op.drop_index(op.f('ix_case_embeddings_model_version'), table_name='case_embeddings')
    op.drop_index(op.f('ix_case_embeddings_case_id'), table_name='case_embeddings')
    op.drop_table('case_embeddings')
    op.drop_index(op.f('ix_cases_source'), table_name='cases')
    op.drop_index(op.f('ix_cases_label'), table_name='cases')
    op.drop_table('cases')
