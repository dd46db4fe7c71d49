"""Checks and values that need the database inside the write transaction: references that must
exist, unique fields and duplicate rules, autonumber counters, and incoming references on delete."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .errors import Conflict, Duplicate
from .files import file_visible
from .messages import Message
from .runtime import EntityRuntime, Runtime


def check_references(runtime: Runtime, er: EntityRuntime, conn: sa.Connection, changed: Mapping[str, Any],
                     errors: dict[str, list[Message]], access) -> None:
    """Referenced records must exist — and be visible to the caller: linking to a record one cannot
    read is refused exactly like linking to one that does not exist (no probing for ids)."""
    users = runtime.tables["users"]
    for f in er.references:
        value = changed.get(f.name)
        if value is None:
            continue
        scope = sa.true()
        if f.type == "file":
            exists = file_visible(runtime, conn, access, value)
        else:
            if f.type == "reference":
                target_er = runtime.entities[f.target]
                target, scope = target_er.table, access.clause(target_er, "read")
            else:
                target = users
            exists = conn.scalar(sa.select(target.c.id).where(target.c.id == value, scope)) is not None
        if not exists:
            errors.setdefault(f.name, []).append(Message("reference", {"target": f.target or f.type, "value": value}))



def check_duplicates(er: EntityRuntime, conn: sa.Connection, record: Mapping[str, Any],
                     changed: Mapping[str, Any], record_id: str | None) -> None:
    table, entity = er.table, er.entity
    rules = [((f.name,), None) for f in entity.fields if f.unique]
    rules += [(rule.fields, rule.message) for rule in entity.duplicate_rules]
    for fields, message in rules:
        if not any(name in changed for name in fields) or any(record.get(name) is None for name in fields):
            continue
        query = sa.select(table.c.id).where(*(table.c[name] == record[name] for name in fields)).limit(1)
        if record_id is not None:
            query = query.where(table.c.id != record_id)
        existing = conn.scalar(query)
        if existing is not None:
            if message:  # the rule's own words, per locale
                raise Duplicate("custom", existing_id=existing, text=dict(message))
            raise Duplicate("duplicate", existing_id=existing, entity=entity.name, fields=", ".join(fields))


def next_numbers(er: EntityRuntime, conn: sa.Connection, counters: sa.Table, now: datetime) -> dict[str, str]:
    """Values for the entity's autonumber fields; each counter restarts when its prefix changes."""
    values = {}
    for f in er.autonumbers:
        template = f.format or (er.name[:3].upper() + "-{seq}")
        prefix = template.split("{seq}")[0]
        key = f"{er.name}.{f.name}:{_render(prefix, now)}"
        seq = _increment(conn, counters, key)
        values[f.name] = _render(template, now).replace("{seq}", str(seq).zfill(f.digits or 1), 1)
    return values


def _render(template: str, now: datetime) -> str:
    return template.replace("{YYYY}", f"{now.year:04d}").replace("{YY}", f"{now.year % 100:02d}") \
        .replace("{MM}", f"{now.month:02d}").replace("{DD}", f"{now.day:02d}")


def _increment(conn: sa.Connection, counters: sa.Table, key: str) -> int:
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(conn.dialect.name)
    if dialect is not None:
        statement = dialect.insert(counters).values(key=key, value=1)
        statement = statement.on_conflict_do_update(index_elements=["key"], set_={"value": counters.c.value + 1})
        return conn.execute(statement.returning(counters.c.value)).scalar_one()
    updated = conn.execute(counters.update().where(counters.c.key == key).values(value=counters.c.value + 1))
    if updated.rowcount == 0:
        conn.execute(counters.insert().values(key=key, value=1))
    return conn.scalar(sa.select(counters.c.value).where(counters.c.key == key))


def check_incoming(runtime: Runtime, er: EntityRuntime, conn: sa.Connection, record_id: str) -> None:
    for entity, field in er.incoming:
        table = runtime.entities[entity].table
        # Existence only: a count would include records the caller may not see.
        if conn.scalar(sa.select(table.c.id).where(table.c[field] == record_id).limit(1)) is not None:
            raise Conflict("referenced", other=entity, field=field)
