"""Reader studies (issue 11): study states, design, readers, responses.

- ``studies``: ``state`` (draft | open | closed) replaces the boolean ``active`` (open studies
  stay open, inactive ones become closed); the design: ``presentation``, ``reference``,
  ``repeat_fraction``, ``scale``, ``alpha``, ``ask_comment``, ``diagnosis_choices``, ``source``,
  ``job_id``, ``open_to_all``; ``opened_at`` / ``closed_at``.
- ``study_cases``: a study's cases (scan, library case, hidden label, reference image).
- ``study_readers``: a study's readers with their recorded order seed and place.
- ``study_responses``: every answer to a showing of an item (repeats, time spent, diagnosis).
  The study ratings already in ``ratings`` are copied in (time unknown: NULL).

No table is rebuilt: SQLite adds and drops plain columns with ``ALTER TABLE`` (SQLite ≥ 3.35),
so nothing that references ``studies`` (items, ratings: ON DELETE CASCADE) is touched. The
downgrade refuses while repeated showings exist (``ratings`` has no place for them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_STUDY_COLUMNS = ('state', 'presentation', 'reference', 'repeat_fraction', 'scale', 'alpha',
                      'ask_comment', 'diagnosis_choices', 'source', 'job_id', 'open_to_all',
                      'opened_at', 'closed_at')


def upgrade() -> None:
    op.add_column('studies', sa.Column('state', sa.String(length=16), nullable=False,
                                       server_default='open'))
    op.add_column('studies', sa.Column('presentation', sa.String(length=16), nullable=False,
                                       server_default='single'))
    op.add_column('studies', sa.Column('reference', sa.String(length=16), nullable=True))
    op.add_column('studies', sa.Column('repeat_fraction', sa.Float(), nullable=False,
                                       server_default='0'))
    op.add_column('studies', sa.Column('scale', sa.Integer(), nullable=True))
    op.add_column('studies', sa.Column('alpha', sa.Float(), nullable=True))
    op.add_column('studies', sa.Column('ask_comment', sa.Boolean(), nullable=False,
                                       server_default=sa.true()))
    op.add_column('studies', sa.Column('diagnosis_choices', sa.JSON(), nullable=True))
    op.add_column('studies', sa.Column('source', sa.JSON(), nullable=True))
    op.add_column('studies', sa.Column('job_id', sa.Integer(), nullable=True))
    op.add_column('studies', sa.Column('open_to_all', sa.Boolean(), nullable=False,
                                       server_default=sa.true()))
    op.add_column('studies', sa.Column('opened_at', sa.DateTime(), nullable=True))
    op.add_column('studies', sa.Column('closed_at', sa.DateTime(), nullable=True))
    op.execute(sa.text("UPDATE studies SET state = CASE WHEN active THEN 'open' ELSE 'closed' "
                       "END, opened_at = created_at"))
    op.drop_column('studies', 'active')

    op.create_table('study_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=64), nullable=True),
    sa.Column('reference_image_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_study_cases_case_id_cases'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reference_image_id'], ['study_images.id'],
                            name=op.f('fk_study_cases_reference_image_id_study_images')),
    sa.ForeignKeyConstraint(['scan_id'], ['scans.id'], name=op.f('fk_study_cases_scan_id_scans'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'],
                            name=op.f('fk_study_cases_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_cases')),
    sa.UniqueConstraint('study_id', 'scan_id', name=op.f('uq_study_cases_study_id_scan_id'))
    )
    op.create_index(op.f('ix_study_cases_study_id'), 'study_cases', ['study_id'], unique=False)

    op.create_table('study_readers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('assigned_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'],
                            name=op.f('fk_study_readers_study_id_studies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_study_readers_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_readers')),
    sa.UniqueConstraint('study_id', 'user_id', name=op.f('uq_study_readers_study_id_user_id'))
    )
    op.create_index(op.f('ix_study_readers_study_id'), 'study_readers', ['study_id'],
                    unique=False)
    op.create_index(op.f('ix_study_readers_user_id'), 'study_readers', ['user_id'], unique=False)

    op.create_table('study_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=False),
    sa.Column('is_repeat', sa.Boolean(), nullable=False),
    sa.Column('image_quality', sa.Integer(), nullable=False),
    sa.Column('diagnostic_usefulness', sa.Integer(), nullable=False),
    sa.Column('diagnosis', sa.String(length=64), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('diagnostic_usefulness BETWEEN 1 AND 5',
                       name=op.f('ck_study_responses_diagnostic_usefulness')),
    sa.CheckConstraint('image_quality BETWEEN 1 AND 5',
                       name=op.f('ck_study_responses_image_quality')),
    sa.CheckConstraint('seconds IS NULL OR seconds >= 0', name=op.f('ck_study_responses_seconds')),
    sa.ForeignKeyConstraint(['item_id'], ['study_items.id'],
                            name=op.f('fk_study_responses_item_id_study_items'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reader_id'], ['users.id'],
                            name=op.f('fk_study_responses_reader_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'],
                            name=op.f('fk_study_responses_study_id_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_responses')),
    sa.UniqueConstraint('item_id', 'reader_id', 'is_repeat',
                        name=op.f('uq_study_responses_item_id_reader_id_is_repeat'))
    )
    op.create_index(op.f('ix_study_responses_item_id'), 'study_responses', ['item_id'],
                    unique=False)
    op.create_index(op.f('ix_study_responses_reader_id'), 'study_responses', ['reader_id'],
                    unique=False)
    op.create_index(op.f('ix_study_responses_study_id'), 'study_responses', ['study_id'],
                    unique=False)

    # Existing studies: one case per scan; their ratings become first showings.
    op.execute(sa.text(
        "INSERT INTO study_cases (study_id, scan_id) "
        "SELECT DISTINCT study_id, scan_id FROM study_items"))
    op.get_bind().execute(sa.text(
        "INSERT INTO study_responses (study_id, item_id, reader_id, is_repeat, image_quality, "
        "diagnostic_usefulness, comment, created_at, updated_at) "
        "SELECT i.study_id, i.id, r.reader_id, :no, r.image_quality, r.diagnostic_usefulness, "
        "r.comment, r.created_at, r.updated_at FROM ratings r JOIN study_items i "
        "ON i.study_id = r.study_key AND i.scan_id = r.scan_id AND i.method = r.method "
        "AND i.model_version = r.model_version"), {"no": False})


def downgrade() -> None:
    bind = op.get_bind()
    n = bind.execute(sa.text("SELECT COUNT(*) FROM study_responses WHERE is_repeat = :yes"),
                     {"yes": True}).scalar()
    if n:
        raise RuntimeError(f"{n} repeated-showing rating(s) exist, which revision 0005 has no "
                           "place for; export the studies and delete those rows first.")
    op.drop_index(op.f('ix_study_responses_study_id'), table_name='study_responses')
    op.drop_index(op.f('ix_study_responses_reader_id'), table_name='study_responses')
    op.drop_index(op.f('ix_study_responses_item_id'), table_name='study_responses')
    op.drop_table('study_responses')
    op.drop_index(op.f('ix_study_readers_user_id'), table_name='study_readers')
    op.drop_index(op.f('ix_study_readers_study_id'), table_name='study_readers')
    op.drop_table('study_readers')
    op.drop_index(op.f('ix_study_cases_study_id'), table_name='study_cases')
    op.drop_table('study_cases')
    op.add_column('studies', sa.Column('active', sa.Boolean(), nullable=False,
                                       server_default=sa.true()))
    bind.execute(sa.text("UPDATE studies SET active = (state = 'open')"))
    for column in _NEW_STUDY_COLUMNS:
        op.drop_column('studies', column)
