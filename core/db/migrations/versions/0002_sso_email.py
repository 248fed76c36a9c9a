"""users.sso_email: the lower-cased e-mail of a user's single sign-on (OIDC) identity, unique;
NULL (the value for every existing user) means no SSO.

Both directions run as plain ALTER TABLE / CREATE INDEX (``recreate="never"``), never as
SQLite's copy-drop-rename rebuild of ``users``: with ``PRAGMA foreign_keys=ON`` (every app
connection) dropping the old ``users`` table deletes its rows first, which cascades to ratings
and nulls the user of scans, predictions, audit rows ... Hence a unique index rather than a
unique constraint (SQLite cannot add a constraint in place), and the downgrade needs SQLite
3.35 or newer (ALTER TABLE ... DROP COLUMN).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('sso_email', sa.String(length=254), nullable=True))
        batch_op.create_index(batch_op.f('ix_users_sso_email'), ['sso_email'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None, recreate='never') as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_sso_email'))
        batch_op.drop_column('sso_email')
