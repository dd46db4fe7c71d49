"""The record service: the one gate for every read and write of records, whoever calls.

Each write runs: parse values → merge with the stored record → whole-record rules → (in one
transaction) references, duplicates, autonumbers, sync hooks, the row, the audit entry → after
commit, the async hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from crm_platform.metadata.errors import ExpressionLimitError

from . import audit, integrity
from .accounts import Actor
from .database import new_id, utcnow
from .errors import BadRequest, Duplicate, NotFound, RecordInvalid, StaleVersion
from .fieldtypes import Invalid
from .hooks import NO_HOOKS, RecordEvent, RecordHooks
from .messages import Message
from .query import MAX_LIMIT, ListQuery, after_cursor, encode_cursor, filter_clause, order_by, search_clause, sort_keys
from .runtime import EntityRuntime, Runtime


class RecordService:
    """Create, read, update, delete, list and audit records of any entity, as ``actor``."""

    def __init__(self, runtime: Runtime, db: sa.Engine, actor: Actor | None, hooks: RecordHooks = NO_HOOKS,
                 clock: Callable[[], datetime] = utcnow):
        self.runtime, self.db, self.actor, self.hooks, self.clock = runtime, db, actor, hooks, clock
        self._user = actor.as_expression_user() if actor else None

    # -- reads ---------------------------------------------------------------------------------
    def get(self, entity: str, record_id: str) -> dict[str, Any]:
        er = self.runtime.entity(entity)
        with self.db.connect() as conn:
            return er.to_json(self._load(er, conn, record_id))

    def list(self, entity: str, query: ListQuery | None = None) -> dict[str, Any]:
        er = self.runtime.entity(entity)
        query = query or ListQuery()
        if not 1 <= query.limit <= MAX_LIMIT:
            raise BadRequest("bad_paging", detail=f"limit must be between 1 and {MAX_LIMIT}")
        if query.page is not None and (query.page < 1 or query.cursor):
            raise BadRequest("bad_paging", detail="page must be 1 or more, and not combined with cursor")
        where = [filter_clause(er, f) for f in query.filters]
        if query.search:
            where.append(search_clause(er, query.search))
        keys = sort_keys(er, query.sort)
        statement = sa.select(er.table).where(*where).order_by(*order_by(er, keys)).limit(query.limit + 1)
        if query.cursor:
            statement = statement.where(after_cursor(er, keys, query.cursor))
        elif query.page:
            statement = statement.offset((query.page - 1) * query.limit)
        with self.db.connect() as conn:
            rows = conn.execute(statement).mappings().all()
            total = conn.scalar(sa.select(sa.func.count()).select_from(er.table).where(*where)) if query.count else None
        more = len(rows) > query.limit
        rows = rows[:query.limit]
        paging: dict[str, Any] = {"limit": query.limit, "has_more": more,
                                  "next_cursor": encode_cursor(keys, rows[-1]) if more and rows else None}
        if query.page:
            paging["page"] = query.page
        if total is not None:
            paging["total"] = total
        return {"data": [er.to_json(er.from_row(row)) for row in rows], "paging": paging}

    def history(self, entity: str, record_id: str) -> list[dict]:
        er = self.runtime.entity(entity)
        with self.db.connect() as conn:
            self._load(er, conn, record_id)
            return audit.read(conn, self.runtime.tables["audit"], self.runtime.tables["users"], er.name, record_id)

    # -- writes --------------------------------------------------------------------------------
    def create(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        er = self.runtime.entity(entity)
        errors: dict[str, list[Message]] = {}
        values = er.validator.parse(data, errors)
        record: dict[str, Any] = {name: None for name in er.system}
        record.update({f.name: None for f, _ in er.stored})
        self._apply_defaults(er, record, values, errors)
        record.update(values)
        if er.entity.staged and record.get("stage") is None:
            record["stage"] = values["stage"] = er.entity.first_stage
        if er.entity.owned and "owner" not in values and self.actor is not None:
            record["owner"] = values["owner"] = self.actor.id
        now, actor_id = self.clock(), self.actor.id if self.actor else None
        record.update(id=new_id(), version=1, created_at=now, updated_at=now, created_by=actor_id, updated_by=actor_id)
        er.validator.check(record, values, None, self._user, errors)
        with self._transaction(er) as conn:
            integrity.check_references(self.runtime, er, conn, values, errors)
            if errors:
                raise RecordInvalid(errors)
            integrity.check_duplicates(er, conn, record, values, None)
            record.update(integrity.next_numbers(er, conn, self.runtime.tables["counters"], now))
            if er.entity.owned:
                record["team"] = self._team_of(conn, record.get("owner"))
            event = self._event(er, "create", record, None, set(values))
            self._run_sync_rules(er, event, conn, record)
            conn.execute(er.table.insert().values(er.to_row({k: v for k, v in record.items() if k in er.table.c
                                                             or er.entity.has_field(k)})))
            stored = [f.name for f, _ in er.stored] + [n for n in ("stage", "owner", "team") if n in er.system]
            audit.write(conn, self.runtime.tables["audit"], er, record["id"], 1, "create", actor_id, now,
                        audit.diff(er, None, record, stored))
        er.compute(record)
        self.hooks.after_commit([event])
        return er.to_json(record)

    def update(self, entity: str, record_id: str, data: Mapping[str, Any], version: int | None) -> dict[str, Any]:
        er = self.runtime.entity(entity)
        if type(version) is not int:
            raise BadRequest("version_required")
        with self.db.connect() as conn:
            old = self._load(er, conn, record_id)
        if old["version"] != version:
            raise StaleVersion("stale_version", sent=version, current=old["version"])
        errors: dict[str, list[Message]] = {}
        values = er.validator.parse(data, errors)
        changed = {k: v for k, v in values.items() if old.get(k) != v}
        record = {**old, **changed}
        er.validator.check(record, values, old, self._user, errors)
        if not changed and not errors:
            return er.to_json(old)
        now, actor_id = self.clock(), self.actor.id if self.actor else None
        with self._transaction(er) as conn:
            integrity.check_references(self.runtime, er, conn, changed, errors)
            if errors:
                raise RecordInvalid(errors)
            integrity.check_duplicates(er, conn, record, changed, record_id)
            if "owner" in changed:
                changed["team"] = record["team"] = self._team_of(conn, changed["owner"])
            event = self._event(er, "update", record, old, set(changed))
            self._run_sync_rules(er, event, conn, record, changed)
            record.update(version=version + 1, updated_at=now, updated_by=actor_id)
            row = er.to_row({**changed, "version": version + 1, "updated_at": now, "updated_by": actor_id})
            table = er.table
            result = conn.execute(table.update().where(table.c.id == record_id, table.c.version == version).values(row))
            if result.rowcount != 1:
                raise StaleVersion("stale_version", sent=version, current="newer")
            audit.write(conn, self.runtime.tables["audit"], er, record_id, version + 1, "update", actor_id, now,
                        audit.diff(er, old, record, changed))
        er.compute(record)
        self.hooks.after_commit([event])
        return er.to_json(record)

    def delete(self, entity: str, record_id: str, version: int | None = None) -> None:
        er = self.runtime.entity(entity)
        now, actor_id = self.clock(), self.actor.id if self.actor else None
        with self._transaction(er) as conn:
            old = self._load(er, conn, record_id)
            if version is not None and old["version"] != version:
                raise StaleVersion("stale_version", sent=version, current=old["version"])
            integrity.check_incoming(self.runtime, er, conn, record_id)
            event = self._event(er, "delete", old, old, set())
            self.hooks.before_write(event, conn)
            conn.execute(er.table.delete().where(er.table.c.id == record_id))
            stored = [f.name for f, _ in er.stored] + [n for n in ("stage", "owner", "team") if n in er.system]
            audit.write(conn, self.runtime.tables["audit"], er, record_id, old["version"] + 1, "delete", actor_id, now,
                        audit.diff(er, old, None, stored))
        self.hooks.after_commit([event])

    # -- internals -----------------------------------------------------------------------------
    def _load(self, er: EntityRuntime, conn: sa.Connection, record_id: str) -> dict[str, Any]:
        row = conn.execute(sa.select(er.table).where(er.table.c.id == record_id)).mappings().first()
        if row is None:
            raise NotFound("not_found", entity=er.name, id=record_id)
        return er.from_row(row)

    def _apply_defaults(self, er: EntityRuntime, record: dict, values: dict, errors: dict) -> None:
        for f in er.defaults:
            if f.name in values:
                continue
            if f.default_expr is not None:
                try:
                    value = f.default_expr.evaluate({**record, **values}, None, self._user)
                except ExpressionLimitError as exc:
                    errors.setdefault(f.name, []).append(Message("expression_limit", {"detail": str(exc)}))
                    continue
            else:
                value = f.default
            values[f.name] = _as_python(er, f.name, value, errors)

    def _team_of(self, conn: sa.Connection, owner: str | None) -> str | None:
        users = self.runtime.tables["users"]
        return conn.scalar(sa.select(users.c.team_id).where(users.c.id == owner)) if owner else None

    def _event(self, er, action, record, old, changed) -> RecordEvent:
        return RecordEvent(er.name, action, record["id"], record["version"], record, old, frozenset(changed),
                           self.actor.id if self.actor else None)

    def _run_sync_rules(self, er, event, conn, record, changed=None) -> None:
        updates = self.hooks.before_write(event, conn) or {}
        if updates:
            errors: dict[str, list[Message]] = {}
            values = er.validator.parse(updates, errors)
            if errors:
                raise RecordInvalid(errors)
            record.update(values)
            if changed is not None:
                changed.update(values)

    def _transaction(self, er: EntityRuntime):
        return _Transaction(self.db, er)


class _Transaction:
    """``engine.begin()`` that turns a unique-index violation into a 409 instead of a 500."""

    def __init__(self, db: sa.Engine, er: EntityRuntime):
        self.context, self.er = db.begin(), er

    def __enter__(self) -> sa.Connection:
        return self.context.__enter__()

    def __exit__(self, kind, error, traceback):
        suppressed = self.context.__exit__(kind, error, traceback)
        if isinstance(error, sa.exc.IntegrityError):
            raise Duplicate("duplicate", entity=self.er.name, fields="unique fields") from error
        return suppressed


def _as_python(er: EntityRuntime, name: str, value, errors: dict):
    """A default given in JSON form (or computed by an expression) as the field's Python value."""
    check = er.validator.checks.get(name)
    if value is None or check is None or isinstance(value, date):
        return value
    try:
        return check(value)
    except Invalid as exc:
        errors.setdefault(name, []).append(Message(exc.key, exc.params))
        return None
