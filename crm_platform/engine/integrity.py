"""Checks and values that need the database inside the write transaction: references that must
exist, unique fields and duplicate rules, autonumber counters, and incoming references on delete."""

from __future__ import annotations

import hashlib
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
    rolled_up = {plan.via for plan in runtime.rollup_plans.get(er.name, ())}
    for f in er.references:
        value = changed.get(f.name)
        if value is None:
            continue
        scope = sa.true()
        if f.type == "file":
            exists = file_visible(runtime, conn, access, value)
        else:
            query = None
            if f.type == "reference":
                target_er = runtime.entities[f.target]
                target, scope = target_er.table, access.clause(target_er, "read")
                query = sa.select(target.c.id).where(target.c.id == value, scope)
                if f.name not in rolled_up:
                    # FOR KEY SHARE (PostgreSQL): until this write commits, nobody can delete the record
                    # it refers to; a delete that got there first makes this find nothing. (A parent with
                    # rollups over this reference is locked FOR UPDATE by their upkeep instead, in one
                    # order for all writers; a weaker lock taken first would deadlock re-parentings.)
                    query = query.with_for_update(read=True, key_share=True)
            else:
                target = users
            exists = conn.scalar(query if query is not None else
                                 sa.select(target.c.id).where(target.c.id == value, scope)) is not None
        if not exists:
            target = runtime.entities[f.target].entity.label if f.type == "reference" else f.type
            errors.setdefault(f.name, []).append(Message("reference", {"target": target, "value": value}))



def check_duplicates(er: EntityRuntime, conn: sa.Connection, record: Mapping[str, Any],
                     changed: Mapping[str, Any], record_id: str | None) -> None:
    """409 if another record has the same values for a unique field or a blocking duplicate rule.

    Holds under concurrency: on PostgreSQL each rule's values take a transaction-scoped advisory
    lock before the look-up, so of two transactions writing the same values the second waits and
    then sees the first's row; SQLite write transactions begin IMMEDIATE, one at a time. Unique
    fields also have a unique index, the last word if anything else writes the table.
    """
    table, entity = er.table, er.entity
    rules = [((f.name,), None) for f in entity.fields if f.unique]
    rules += [(rule.fields, rule.message) for rule in entity.duplicate_rules if rule.action == "block"]
    for fields, message in rules:
        if not any(name in changed for name in fields) or any(record.get(name) is None for name in fields):
            continue
        if conn.dialect.name == "postgresql":
            conn.execute(_ADVISORY_LOCK, {"key": _lock_key(entity.name, fields, record)})
        query = sa.select(table.c.id).where(*(table.c[name] == record[name] for name in fields)).limit(1)
        if record_id is not None:
            query = query.where(table.c.id != record_id)
        existing = conn.scalar(query)
        if existing is not None:
            if message:  # the rule's own words, per locale
                raise Duplicate("custom", existing_id=existing, text=dict(message))
            raise Duplicate("duplicate", existing_id=existing, entity=entity.label,
                            fields=tuple(entity.field(name).label for name in fields))


_ADVISORY_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


def _lock_key(entity: str, fields: tuple[str, ...], record: Mapping[str, Any]) -> int:
    """A signed 64-bit key for these values of these fields (collisions only make writers wait)."""
    text = "\x1f".join([entity, *fields, *(repr(record[name]) for name in fields)])
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "big", signed=True)


def unique_violation(er: EntityRuntime, error: sa.exc.IntegrityError) -> tuple[str, ...]:
    """The fields of the unique index ``error`` violated, or () if it is no unique violation of ours.
    PostgreSQL names the constraint (our index names are ``ux_<entity>_<field>``); SQLite names the
    columns (``UNIQUE constraint failed: lead.mobile``)."""
    orig = error.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:
        if getattr(orig, "sqlstate", None) != "23505":
            return ()
        prefix = f"ux_{er.name}_"
        name = diag.constraint_name or ""
        field = name.removeprefix(prefix)
        return (field,) if name.startswith(prefix) and er.entity.has_field(field) else ()
    message = str(orig)
    if not message.startswith("UNIQUE constraint failed: "):
        return ()
    columns = [part.strip().partition(".") for part in message.removeprefix("UNIQUE constraint failed: ").split(",")]
    if any(table != er.name or not er.entity.has_field(column) for table, _, column in columns):
        return ()
    return tuple(column for _, _, column in columns)


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
            other = runtime.entities[entity].entity
            raise Conflict("referenced", other=other.label, field=other.field(field).label)
