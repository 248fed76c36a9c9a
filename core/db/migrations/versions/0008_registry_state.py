"""Several app servers (issue 17): the model registry's active pointers in the database.

``registry_state``: one row per task and slot (``""`` for the default slot) with the active
version, the one before it, the action (activate / rollback), a generation counter, when and by
whom. ``core.registry`` writes it in the same transaction as the audit row of an activation or
rollback, and every app server reads it (throttled) so an activation on one takes effect on all.
A database without rows keeps using the file pointers (``weights/<task>/ACTIVE[.slot]``), which
are still written too; the way down only drops the table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('registry_state',
    sa.Column('task', sa.String(length=32), nullable=False),
    sa.Column('slot', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('previous', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_registry_state_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('task', 'slot', name=op.f('pk_registry_state'))
    )


def downgrade() -> None:
    op.drop_table('registry_state')
