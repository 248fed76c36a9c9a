"""Scan display names and thumbnails, and the view a rating was given on (issue 14 items 3, 7).

- ``scans.display_name`` (the PHI-masked file name the scan was first uploaded under) and
  ``scans.thumbnail`` (a ≤128 px PNG of the displayed image, no header), so My ratings and the
  ratings export can show which image a rating belongs to.
- ``ratings.frame``, ``ratings.scale``, ``ratings.mode``, ``ratings.alpha``: the view the scores
  were given on (multi-frame frame, SR scale and mode, ESRGAN α).

Only nullable columns are added, as plain ``ALTER TABLE ... ADD COLUMN`` (``recreate="never"``):
SQLite's copy-drop-rename rebuild must never run on ``scans`` (dropping the old table would
cascade-delete every rating, prediction and SR result of the scan with foreign keys on, see
0002). For the same reason the ratings unique key (reader, scan, method, model version, study)
is left as it is: changing a table constraint on SQLite needs a rebuild. Existing rows keep NULL
(view not recorded). The downgrade needs SQLite 3.35 or newer (ALTER TABLE ... DROP COLUMN).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RATING_VIEW = (('frame', sa.Integer()), ('scale', sa.Integer()), ('mode', sa.String(length=16)),
                ('alpha', sa.Float()))


def upgrade() -> None:
    with op.batch_alter_table('scans', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('display_name', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('thumbnail', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('ratings', schema=None, recreate='never') as batch_op:
        for name, type_ in _RATING_VIEW:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ratings', schema=None, recreate='never') as batch_op:
        for name, _ in reversed(_RATING_VIEW):
            batch_op.drop_column(name)
    with op.batch_alter_table('scans', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('thumbnail')
        batch_op.drop_column('display_name')
