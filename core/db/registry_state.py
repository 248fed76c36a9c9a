"""The model registry's active pointers shared through the database (table ``registry_state``).

``core.registry`` writes a row with every audited activation and rollback (same transaction as
the audit row) and reads them back through :mod:`core.shared_registry`, which throttles the
query; nothing here touches files. The default slot of a task is stored as ``""``.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.tables import RegistryState, utcnow
from core.db.rows import ActiveModelView

__all__ = ["record_active", "active_models", "DEFAULT_SLOT"]

DEFAULT_SLOT = ""


def _view(row: RegistryState) -> ActiveModelView:
    return ActiveModelView(task=row.task, slot=row.slot or None, version=row.version,
                           generation=row.generation, updated_at=row.updated_at,
                           previous=row.previous, action=row.action, user_id=row.user_id,
                           username=row.username)


def record_active(session: Session, task: str, slot: str | None, version: str, *,
                  previous: str | None = None, action: str = "activate",
                  user_id: int | None = None, username: str | None = None) -> ActiveModelView:
    """Make ``version`` the active one of ``task``'s ``slot`` for every server: update its row
    (generation + 1, in one statement, so two servers writing at once both count) or insert
    it (generation 1). Flushed, not committed: the caller's transaction decides."""
    key = DEFAULT_SLOT if slot is None else slot
    values = dict(version=version, previous=previous, action=action, updated_at=utcnow(),
                  user_id=user_id, username=username)
    for _ in range(2):   # an insert that lost a race to another server becomes an update
        done = session.execute(
            update(RegistryState).where(RegistryState.task == task, RegistryState.slot == key)
            .values(generation=RegistryState.generation + 1, **values)
            .execution_options(synchronize_session=False)).rowcount
        if done:
            break
        try:
            with session.begin_nested():
                session.add(RegistryState(task=task, slot=key, generation=1, **values))
            break
        except IntegrityError:
            continue
    row = session.execute(select(RegistryState).where(
        RegistryState.task == task, RegistryState.slot == key)
        .execution_options(populate_existing=True)).scalar_one()
    return _view(row)


def active_models(session: Session) -> dict[tuple[str, str | None], ActiveModelView]:
    """Every row, keyed by ``(task, slot)`` (``slot`` None for the default): the one small
    query each server runs every few seconds."""
    return {(v.task, v.slot): v for v in map(_view, session.scalars(select(RegistryState)))}
