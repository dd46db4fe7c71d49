"""The record service: the one gate for every read and write of records, whoever calls.

Each write runs: parse values → merge with the stored record → whole-record rules → (in one
transaction) references, duplicates, autonumbers, sync hooks, the row, the audit entry → after
commit, the async hooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crm_platform.metadata.errors import ExpressionLimitError
from crm_platform.metadata.model import ACTIONS

from . import audit, integrity, lookups, rollups
from .access import Access
from .accounts import Actor
from .database import UnitOfWork, new_id, utcnow
from .errors import (
    BadRequest,
    Duplicate,
    FieldsForbidden,
    Forbidden,
    NotFound,
    RecordInvalid,
    StaleVersion,
)
from .explain import explain
from .hooks import NO_HOOKS, RecordEvent, RecordHooks
from .messages import Message
from .ownership import OwnershipMixin
from .query import (
    MAX_FILTERS,
    MAX_LIMIT,
    MAX_PAGE,
    ListQuery,
    after_cursor,
    encode_cursor,
    filter_clause,
    order_by,
    search_clause,
    sort_keys,
)
from .related import RelatedMixin, as_python
from .runtime import HIDE, EntityRuntime, Runtime
from .system_fields import label_of
from .validation import IMPORT

log = logging.getLogger(__name__)
#: Where errors about the record as a whole are reported (no field name can start with "_").
RECORD = "_record"


class RecordService(OwnershipMixin, RelatedMixin):
    """Create, read, update, delete, list and audit records of any entity, as ``actor``."""

    def __init__(self, runtime: Runtime, db: sa.Engine | UnitOfWork, actor: Actor | None,
                 hooks: RecordHooks = NO_HOOKS, clock: Callable[[], datetime] = utcnow):
        self.runtime, self.actor, self.hooks, self.clock = runtime, actor, hooks, clock
        self.db = UnitOfWork.of(db)
        self._user = actor.as_expression_user() if actor else None
        self.access = Access(runtime, self.db, actor)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, entity: str, record_id: str) -> dict[str, Any]:
        er = self._readable(entity)
        with self.db.connect() as conn:
            return self._out(er, self._load(er, conn, record_id))

    def list(self, entity: str, query: ListQuery | None = None) -> dict[str, Any]:
        er = self._readable(entity)
        query = query or ListQuery()
        if not 1 <= query.limit <= MAX_LIMIT:
            raise BadRequest("bad_paging", detail=Message("limit_range", {"max": MAX_LIMIT}))
        if query.page is not None and (not 1 <= query.page <= MAX_PAGE or query.cursor):
            raise BadRequest("bad_paging", detail=Message("page_range", {"max": MAX_PAGE}))
        if len(query.filters) > MAX_FILTERS:
            raise BadRequest("bad_paging", detail=Message("too_many_filters", {"max": MAX_FILTERS}))
        hidden = self.access.policy(er).hidden
        where = [self.access.clause(er, "read")]
        where += [filter_clause(er, f, hidden) for f in query.filters]
        if query.search:
            where.append(search_clause(er, query.search, hidden))
        keys = sort_keys(er, query.sort, hidden)
        order = order_by(er, keys)
        statement = sa.select(er.table).where(*where).order_by(*order).limit(query.limit + 1)
        if query.cursor:
            statement = statement.where(after_cursor(er, keys, query.cursor))
        elif query.page:
            statement = statement.offset((query.page - 1) * query.limit)
        joined = lookups.joined(self.runtime, er, self.access) if er.paths else None
        if joined is not None:
            statement = joined.page(statement, order)
        with self.db.connect() as conn:
            rows = conn.execute(statement).mappings().all()
            total = conn.scalar(sa.select(sa.func.count()).select_from(er.table).where(*where)) if query.count else None
            more = len(rows) > query.limit
            rows = rows[:query.limit]
            records = [er.from_row(row) for row in rows]
            self._complete(er, conn, records, rows, joined)
        paging: dict[str, Any] = {"limit": query.limit, "has_more": more,
                                  "next_cursor": encode_cursor(keys, rows[-1]) if more and rows else None}
        if query.page:
            paging["page"] = query.page
        if total is not None:
            paging["total"] = total
        return {"data": er.records_to_json(records, self.access.policy(er).hidden), "paging": paging}

    def history(self, entity: str, record_id: str) -> list[dict]:
        er = self._readable(entity)
        hidden = self.access.policy(er).hidden
        with self.db.connect() as conn:
            self._load(er, conn, record_id)
            entries = audit.read(conn, self.runtime.tables["audit"], self.runtime.tables["users"], er.name, record_id)
        for entry in entries:
            entry["changes"] = [c for c in entry["changes"] if c["field"] not in hidden]
        return entries

    # -- writes --------------------------------------------------------------------------------
    def create(self, entity: str, data: Mapping[str, Any], *, action: str | None = None) -> dict[str, Any]:
        """``action`` names the action creating the record (e.g. ``convert``), for stages only an
        action may set; plain creates leave it None."""
        er = self._readable(entity)
        if self.access.policy(er).scope("create") == "none":
            raise Forbidden("forbidden_action", action="create", entity=er.entity.label)
        self._check_writable(er, data)
        errors: dict[str, list[Message]] = {}
        values = er.validator.parse(data, errors)
        record: dict[str, Any] = {name: None for name in er.system}
        record.update({f.name: None for f, _ in er.stored})
        record.update({f.name: rollups.empty(f) for f in er.rollups})
        record.update(values)
        if er.entity.staged and record.get("stage") is None:
            record["stage"] = values["stage"] = er.entity.first_stage
        if er.entity.owned and "owner" not in values and self.actor is not None:
            record["owner"] = values["owner"] = self.actor.id
        now, actor_id = self.clock(), self.actor.id if self.actor else None
        record.update(id=new_id(), version=1, created_at=now, updated_at=now, created_by=actor_id, updated_by=actor_id)
        with self.db.connect() as conn:
            self._derive(er, conn, record, values, set(values), errors, creating=True)
        if action is None and self.actor is None:
            action = IMPORT  # the trusted system context loads records as they are, in any stage
        er.validator.check(record, values, None, self._user, errors, action=action)
        with self._transaction(er) as conn:
            integrity.check_references(self.runtime, er, conn, values, errors, self.access)
            if er.entity.owned:
                record["team"] = self._owner_team(conn, record.get("owner"), errors)
            errors = self._visible_errors(er, errors)
            if errors:
                raise RecordInvalid(errors)
            if er.entity.owned:
                self._check_owner(er, record["owner"], record["team"], None)
            self._check_parent(er, conn, record, None)
            self._follow_parent(er, conn, record, values)
            self._check_duplicates(er, conn, record, values, None)
            record.update(integrity.next_numbers(er, conn, self.runtime.tables["counters"], now))
            event = self._event(er, "create", record, None, set(values))
            self._run_sync_rules(er, event, conn, record)
            # Values go as execution parameters: the INSERT itself is compiled once and cached.
            conn.execute(er.table.insert(), er.to_row({k: v for k, v in record.items() if k in er.columns}))
            rollups.maintain(self.runtime, conn, er, None, record)
            er.compute(record)
            out = er.to_json(record)
            audit.write(conn, self.runtime.tables["audit"], er, record["id"], 1, "create", actor_id, now,
                        audit.diff(None, out, er.audited))
        self._after_commit(event)
        return self._mask(er, out, record)

    def update(self, entity: str, record_id: str, data: Mapping[str, Any], version: int | None, *,
               action: str | None = None) -> dict[str, Any]:
        er = self._readable(entity)
        if type(version) is not int:
            raise BadRequest("version_required")
        with self.db.connect() as conn:
            old = self._load(er, conn, record_id)
        self._require(er, "update", old)
        self._check_writable(er, data)
        if old["version"] != version:
            raise StaleVersion("stale_version", sent=version, current=old["version"])
        errors: dict[str, list[Message]] = {}
        values = er.validator.parse(data, errors)
        changed = {k: v for k, v in values.items() if old.get(k) != v}
        record = {**old, **changed}
        with self.db.connect() as conn:
            self._derive(er, conn, record, changed, set(values), errors, creating=False)
        er.validator.check(record, values, old, self._user, errors, action=action)
        if not changed and not errors:
            return self._out(er, old)
        now, actor_id = self.clock(), self.actor.id if self.actor else None
        with self._transaction(er) as conn:
            integrity.check_references(self.runtime, er, conn, changed, errors, self.access)
            if "owner" in changed:
                changed["team"] = record["team"] = self._owner_team(conn, changed["owner"], errors)
            errors = self._visible_errors(er, errors)
            if errors:
                raise RecordInvalid(errors)
            if "owner" in changed:
                self._check_owner(er, changed["owner"], changed["team"], old)
            self._check_parent(er, conn, record, old)
            if er.entity.follows_owner and er.entity.parent.name in changed:
                self._follow_parent(er, conn, record, changed)
            self._check_duplicates(er, conn, record, changed, record_id)
            event = self._event(er, "update", record, old, set(changed))
            self._run_sync_rules(er, event, conn, record, changed)
            record.update(version=version + 1, updated_at=now, updated_by=actor_id)
            row = er.to_row({**changed, "version": version + 1, "updated_at": now, "updated_by": actor_id})
            table = er.table
            statement = table.update().where(table.c.id == sa.bindparam("_id"), table.c.version == sa.bindparam("_version"))
            result = conn.execute(statement, {**row, "_id": record_id, "_version": version})
            if result.rowcount != 1:
                raise StaleVersion("stale_version", sent=version, current="newer")
            rollups.maintain(self.runtime, conn, er, old, record)
            if "owner" in changed:
                self._move_followers(conn, er, record)
            er.compute(record)
            out = er.to_json(record)
            audit.write(conn, self.runtime.tables["audit"], er, record_id, version + 1, "update", actor_id, now,
                        audit.diff(er.to_json(old), out, changed))
        self._after_commit(event)
        return self._mask(er, out, record)

    def explain(self, entity: str, action: str, subject: Actor, record_id: str | None = None,
                field: str | None = None) -> dict[str, Any]:
        """Whether ``subject`` may ``action`` (the record / the field), with the chain of reasons.
        The record must be readable by the caller: explaining never reveals a record's existence."""
        er = self._readable(entity)
        if action not in ACTIONS:
            raise BadRequest("bad_payload", detail=Message("unknown_action", {"name": action, "choices": ", ".join(ACTIONS)}))
        if field is not None and field not in er.system and not er.entity.has_field(field):
            raise BadRequest("bad_payload", detail=Message("no_field", {"entity": er.entity.label, "name": field}))
        record = None
        if record_id is not None:
            with self.db.connect() as conn:
                record = self._load(er, conn, record_id)
        return explain(Access(self.runtime, self.db, subject), er, action, record, field)

    # -- internals -----------------------------------------------------------------------------
    def _load(self, er: EntityRuntime, conn: sa.Connection, record_id: str) -> dict[str, Any]:
        """The record if the caller may read it; otherwise 404, as if it did not exist."""
        query = er.select_by_id(self.access.clause_key(er, "read"), lambda: self.access.clause(er, "read"))
        row = conn.execute(query, {"crm_id": record_id}).mappings().first()
        if row is None:
            raise NotFound("not_found", entity=er.entity.label, id=record_id)
        record = er.from_row(row)
        self._complete(er, conn, [record])
        return record

    def _readable(self, entity: str) -> EntityRuntime:
        """The entity, if the caller may see it at all (else 404, like an unknown entity)."""
        er = self.runtime.entity(entity)
        if not self.access.sees_entity(er):
            raise NotFound("unknown_entity", entity=entity)
        return er

    def _require(self, er: EntityRuntime, action: str, record: Mapping[str, Any]) -> None:
        allowed, _ = self.access.check(er, action, record)
        if not allowed:
            raise Forbidden("forbidden_action", action=action, entity=er.entity.label)

    def _check_writable(self, er: EntityRuntime, data: Mapping[str, Any]) -> None:
        """403 naming every sent field the caller may not write: read-only or hidden for the role, or
        read-only for everyone (formulas, autonumbers, system columns). Unknown fields stay a 422."""
        policy, readonly = self.access.policy(er), er.validator.readonly
        denied = {name: [Message("not_writable")] for name in data
                  if not policy.may_write(name) or name in readonly}
        if denied:
            raise FieldsForbidden(denied, {name: label_of(er.entity, name) for name in denied})

    def _check_owner(self, er: EntityRuntime, owner: str | None, team: str | None, old) -> None:
        """Giving a record to someone else (or to the pool) is assigning: it needs the assign grant."""
        if self.actor is None or owner == self.actor.id or (old is not None and owner == old.get("owner")):
            return
        policy = self.access.policy(er)
        if owner is None and er.entity.pooled and (policy.pool or policy.scope("assign") != "none"):
            return
        if owner is not None and self.access.may_assign_to(er, team):
            return
        raise FieldsForbidden({"owner": [Message("assign_target")]}, {"owner": label_of(er.entity, "owner")})

    def _check_duplicates(self, er, conn, record, changed, record_id) -> None:
        try:
            integrity.check_duplicates(er, conn, record, changed, record_id)
        except Duplicate as exc:
            visible = conn.scalar(sa.select(er.table.c.id).where(er.table.c.id == exc.existing_id,
                                                                  self.access.clause(er, "read")))
            if visible is None:
                exc.existing_id = None  # a duplicate the caller cannot see is reported without its id
            raise

    def _visible_errors(self, er: EntityRuntime, errors: dict) -> dict:
        """Errors on fields the caller cannot see would name them, so they are left out — except the
        definition's own messages (validation rules, gates): those still refuse the write, shown on
        the record as a whole (``_record``) instead of on the hidden field."""
        hidden = self.access.policy(er).hidden
        visible = {name: messages for name, messages in errors.items() if name not in hidden}
        for name, messages in errors.items():
            if name in hidden:
                own = visible.setdefault(RECORD, [])
                own += [m for m in messages if m.key == "custom" and m not in own]
        if not visible.get(RECORD, True):
            del visible[RECORD]
        return visible

    def _out(self, er: EntityRuntime, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record as JSON, without the fields the caller may not see."""
        out = er.to_json(record, self.access.policy(er).hidden)
        for name in er.unreadable(record.get(HIDE, frozenset())):
            out.pop(name, None)
        return out

    def _mask(self, er: EntityRuntime, out: dict[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
        """The one place where fields hidden from the caller are removed from a written record's JSON:
        the role's hidden fields, and lookups from records the caller may not read."""
        for name in (*self.access.policy(er).hidden, *er.unreadable(record.get(HIDE, frozenset()))):
            out.pop(name, None)
        return out

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
            values[f.name] = as_python(er, f.name, value, errors)

    def _owner_team(self, conn: sa.Connection, owner: str | None, errors: dict) -> str | None:
        """The team of an owner, who must be an active user (an error on ``owner`` otherwise)."""
        if owner is None:
            return None
        if self.actor is not None and owner == self.actor.id:
            return self.actor.team  # the caller was authenticated as an active user just now
        users = self.runtime.tables["users"]
        row = conn.execute(sa.select(users.c.team_id).where(users.c.id == owner, users.c.active)).first()
        if row is None:
            errors.setdefault("owner", []).append(Message("reference", {"target": "user", "value": owner}))
            return None
        return row.team_id

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

    def _after_commit(self, event: RecordEvent) -> None:
        """The write has committed: whatever happens now, it answers success. A failing hook is
        logged; retrying what it failed to do belongs to the hook (the workflow outbox)."""
        try:
            self.hooks.after_commit([event])
        except Exception:
            log.exception("after-commit hook failed for %s %s %s (version %s); the write stands",
                          event.action, event.entity, event.record_id, event.version)

    def _transaction(self, er: EntityRuntime):
        return _Transaction(self.db, er)


class _Transaction:
    """A write transaction that answers a unique-index violation — a concurrent write got there
    first — with 409 on the field it concerns. Any other integrity error is a bug and propagates."""

    def __init__(self, db: UnitOfWork, er: EntityRuntime):
        self.context, self.er = db.begin(), er

    def __enter__(self) -> sa.Connection:
        return self.context.__enter__()

    def __exit__(self, kind, error, traceback):
        raised = error
        try:
            suppressed = self.context.__exit__(kind, error, traceback)
        except sa.exc.IntegrityError as exc:  # raised by the commit
            raised, suppressed = exc, False
        if isinstance(raised, sa.exc.IntegrityError):
            fields = integrity.unique_violation(self.er, raised)
            if fields:
                entity = self.er.entity
                raise Duplicate("duplicate", entity=entity.label,
                                fields=tuple(entity.field(name).label for name in fields)) from raised
            if raised is not error:
                raise raised
        return suppressed
