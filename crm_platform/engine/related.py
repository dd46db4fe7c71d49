"""What a write does across records, mixed into the record service: values derived before a write
is checked (paths re-read, fetches, stage probability, defaults, lookups and formulas), lookups of
records read, a detail's parent (may it be written; its owner and team, which the detail carries),
and a delete's ``on_delete`` for every reference to the record."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa

from . import audit, lookups, rollups
from .errors import Conflict, Forbidden, NotFound, StaleVersion
from .fieldtypes import TYPES, Invalid
from .hooks import RecordEvent
from .messages import Message
from .runtime import HIDE, EntityRuntime


class RelatedMixin:
    """Mixed into RecordService; uses its loading, permission and event helpers."""

    def delete(self, entity: str, record_id: str, version: int | None = None) -> None:
        """Delete a record; what references it is refused, deleted too or cleared, as each reference's
        ``on_delete`` says — all in one transaction, every change audited as the caller's."""
        er = self._readable(entity)
        with self._transaction(er) as conn:
            old = self._load(er, conn, record_id)
            self._require(er, "delete", old)
            if version is not None and old["version"] != version:
                raise StaleVersion("stale_version", sent=version, current=old["version"])
            events: list[RecordEvent] = []
            self._remove(er, conn, old, events, None)
            if events[-1] is None:
                if version is not None:
                    raise StaleVersion("stale_version", sent=version, current="newer")
                raise NotFound("not_found", entity=er.entity.label, id=record_id)
        for event in events:
            self._after_commit(event)

    def _remove(self, er: EntityRuntime, conn: sa.Connection, old: dict, events: list, parent) -> None:
        """Delete ``old`` after applying the ``on_delete`` of every reference to it; appends the events
        (None last if the row was gone: a concurrent delete won)."""
        now, actor_id = self.clock(), self.actor.id if self.actor else None
        if er.incoming:  # (PostgreSQL) wait for writes that refer to it to commit, so they are seen below
            conn.execute(sa.select(er.table.c.id).where(er.table.c.id == old["id"]).with_for_update())
        for entity, name in er.incoming:
            child = self.runtime.entities[entity]
            rule = child.entity.field(name).on_delete
            rows = conn.execute(sa.select(child.table).where(child.table.c[name] == old["id"])
                                .limit(1 if rule == "restrict" else None)).mappings().all()
            if rows and rule == "restrict":
                raise Conflict("referenced", other=child.entity.label, field=child.entity.field(name).label)
            for row in rows:
                record = child.from_row(row)
                if rule == "cascade":
                    self._remove(child, conn, record, events, (er.name, old["id"]))
                else:
                    self._clear_reference(child, conn, record, name, events, (er.name, old["id"]))
        event = self._event(er, "delete", old, old, set())
        self.hooks.before_write(event, conn)
        # Only the version just read: of concurrent deletes exactly one removes the row.
        deleted = conn.execute(er.table.delete().where(er.table.c.id == old["id"], er.table.c.version == old["version"]))
        if deleted.rowcount != 1:
            events.append(None)
            return
        rollups.maintain(self.runtime, conn, er, old, None, skip=parent)
        audit.write(conn, self.runtime.tables["audit"], er, old["id"], old["version"] + 1, "delete", actor_id, now,
                    audit.diff(er.to_json(old), None, er.audited))
        events.append(event)

    def _clear_reference(self, er: EntityRuntime, conn: sa.Connection, old: dict, name: str, events: list,
                         parent) -> None:
        """``on_delete: set_null``: the reference to a deleted record is cleared, as a new version."""
        now, actor_id = self.clock(), self.actor.id if self.actor else None
        table, version = er.table, old["version"] + 1
        conn.execute(table.update().where(table.c.id == old["id"]).values(
            {name: None, "version": version, "updated_at": now, "updated_by": actor_id}))
        record = {**old, name: None, "version": version, "updated_at": now, "updated_by": actor_id}
        rollups.maintain(self.runtime, conn, er, old, record, skip=parent)
        audit.write(conn, self.runtime.tables["audit"], er, old["id"], version, "update", actor_id, now,
                    audit.diff(er.to_json(old), er.to_json(record), (name,)))
        events.append(self._event(er, "update", record, old, {name}))


    def _complete(self, er: EntityRuntime, conn: sa.Connection, records: list[dict], rows=(),
                  joined: lookups.Joined | None = None) -> None:
        """Resolve the paths the entity reads — a list page's one-reference paths came with its rows
        (``joined``), the rest take one query per reference followed, for all the records —
        then compute lookups and formulas; a record whose lookups come from a record the caller may
        not read carries those paths under ``HIDE`` (the fields showing them are left out of its JSON)."""
        if not er.paths:
            return
        rest = er.paths - joined.paths if joined is not None else er.paths
        found = lookups.resolve(self.runtime, conn, er, records, self.access, rest)
        for i, (record, blocked) in enumerate(zip(records, found)):
            if joined is not None:
                blocked = blocked | joined.read(rows[i], record)
            er.compute(record)
            if blocked:
                record[HIDE] = frozenset(blocked)

    def _derive(self, er: EntityRuntime, conn: sa.Connection, record: dict, changed: dict, sent: set[str],
                errors: dict, *, creating: bool) -> None:
        """Before a write is checked: the values that follow from what was sent. Paths are read again
        where a reference changed; a field fetched from a reference that changed takes its source's
        value, unless this write sent it; a new stage sets the probability field, unless sent; defaults
        fill what a new record lacks; then lookups and formulas are computed (rules may read them)."""
        moved = {p for p in er.paths if p.partition(".")[0] in changed}
        if moved:
            blocked = lookups.resolve(self.runtime, conn, er, [record], self.access, moved)[0]
            record[HIDE] = (record.get(HIDE, frozenset()) - moved) | blocked
        unseen = self.access.policy(er).hidden_paths | record.get(HIDE, frozenset())
        for f in er.fetches:  # never copy what the caller may not read
            if f.fetch_from in moved and f.name not in sent and f.fetch_from not in unseen:
                source = self.runtime.path_field(er, f.fetch_from)
                value = as_python(er, f.name, TYPES[source.type].to_json(record[f.fetch_from]), errors)
                if value != record.get(f.name) or creating:
                    record[f.name] = changed[f.name] = value
        entity = er.entity
        if entity.probability_field and "stage" in changed and entity.probability_field not in sent:
            stage = entity.stage(record["stage"])
            if stage is not None:
                value = as_python(er, entity.probability_field, stage.probability, errors)
                if value != record.get(entity.probability_field) or creating:
                    record[entity.probability_field] = changed[entity.probability_field] = value
        if creating:
            self._apply_defaults(er, record, changed, errors)
            record.update(changed)
        er.compute(record)


    def _check_parent(self, er: EntityRuntime, conn: sa.Connection, record: Mapping[str, Any], old) -> None:
        """A detail (a contract's payment) is written exactly when the caller may update its parent —
        the new parent, when it moves (the old one was checked with the record itself)."""
        parent = er.entity.parent
        if parent is None or self.actor is None or (old is not None and old.get(parent.name) == record.get(parent.name)):
            return
        target = self.runtime.entities[parent.target]
        query = sa.select(target.table.c.id).where(target.table.c.id == record.get(parent.name),
                                                   self.access.clause(target, "update"))
        if conn.scalar(query) is None:
            raise Forbidden("forbidden_action", action="update", entity=target.entity.label)

    def _follow_parent(self, er: EntityRuntime, conn: sa.Connection, record: dict, changed: dict) -> None:
        """A detail of an owned entity carries its parent's owner and team (what its scope reads)."""
        if not er.entity.follows_owner:
            return
        parent = er.entity.parent
        table = self.runtime.entities[parent.target].table
        row = conn.execute(sa.select(table.c.owner, table.c.team).where(table.c.id == record[parent.name])).first()
        record["owner"] = changed["owner"] = row.owner if row else None
        record["team"] = changed["team"] = row.team if row else None

    def _move_followers(self, conn: sa.Connection, er: EntityRuntime, record: Mapping[str, Any]) -> None:
        """The parent changed hands: its details follow, in the same transaction (not new versions of
        them — their own fields did not change)."""
        for entity, name in er.followers:
            table = self.runtime.entities[entity].table
            conn.execute(table.update().where(table.c[name] == record["id"])
                         .values(owner=record["owner"], team=record["team"]))


def as_python(er: EntityRuntime, name: str, value, errors: dict):
    """A default given in JSON form (or computed by an expression) as the field's Python value."""
    check = er.validator.checks.get(name)
    if value is None or check is None or isinstance(value, date):
        return value
    try:
        return check(value)
    except Invalid as exc:
        errors.setdefault(name, []).append(Message(exc.key, exc.params))
        return None
