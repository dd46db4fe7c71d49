"""The audit trail: one row per change (who, when, which fields, old → new), written in the same
transaction as the change, readable per record."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from .runtime import EntityRuntime


def diff(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, names: Iterable[str]) -> dict[str, list]:
    """``{field: [old, new]}`` for the named fields whose value differs, given records in JSON form
    (the same JSON the caller gets back, so nothing is serialised twice)."""
    old, new = old or {}, new or {}
    return {name: [old.get(name), new.get(name)] for name in names if old.get(name) != new.get(name)}


def write(conn: sa.Connection, audit: sa.Table, er: EntityRuntime, record_id: str, version: int, action: str,
          actor_id: str | None, at: datetime, changes: dict[str, list]) -> None:
    conn.execute(audit.insert(), {"entity": er.name, "record_id": record_id, "version": version, "action": action,
                                  "actor_id": actor_id, "at": at, "changes": changes})


def read(conn: sa.Connection, audit: sa.Table, users: sa.Table, entity: str, record_id: str) -> list[dict]:
    query = (sa.select(audit, users.c.username).outerjoin(users, users.c.id == audit.c.actor_id)
             .where(audit.c.entity == entity, audit.c.record_id == record_id).order_by(audit.c.id))
    return [{"id": row.id, "version": row.version, "action": row.action,
             "at": row.at.astimezone(UTC).isoformat(), "by": {"id": row.actor_id, "username": row.username},
             "changes": [{"field": name, "old": old, "new": new} for name, (old, new) in row.changes.items()]}
            for row in conn.execute(query)]
