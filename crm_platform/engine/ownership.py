"""Ownership changes of the record service: claim from the public pool, release to it, assign.

Each is a compare-and-swap on the owner column (``UPDATE ... WHERE owner IS NOT DISTINCT FROM
:previous``), so two people claiming the same record at once get exactly one winner; the other
gets 409.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import audit, rollups
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .fieldtypes import Invalid
from .messages import Message
from .runtime import EntityRuntime


class OwnershipMixin:
    """Mixed into RecordService; uses its loading, permission and output helpers."""

    def claim(self, entity: str, record_id: str) -> dict[str, Any]:
        """Take a record from the public pool into the caller's private pool. Whoever loses a race
        for it — or comes after the winner — hears 409 "someone else claimed it", not 404."""
        try:
            er, old = self._pooled_record(entity, record_id)
        except NotFound:
            er = self.runtime.entity(entity)
            if self.access.policy(er).pool and self._last_action(er, record_id) == "claim":
                raise Conflict("already_owned") from None
            raise
        if not self.access.policy(er).pool:
            raise Forbidden("forbidden_action", action="claim", entity=er.entity.label)
        if old["owner"] is not None:
            raise Conflict("already_owned")
        return self._set_owner(er, old, self.actor.id, self.actor.team, "claim")

    def release(self, entity: str, record_id: str) -> dict[str, Any]:
        """Put a record back into the public pool: its owner, or someone who may assign it."""
        er, old = self._pooled_record(entity, record_id)
        mine = old["owner"] is not None and old["owner"] == (self.actor.id if self.actor else None)
        if not (mine and self.access.policy(er).pool) and not self.access.check(er, "assign", old)[0]:
            raise Forbidden("forbidden_action", action="release", entity=er.entity.label)
        if old["owner"] is None:
            return self._out(er, old)
        return self._set_owner(er, old, None, None, "release")

    def assign(self, entity: str, record_id: str, owner: str | None) -> dict[str, Any]:
        """Give a record to another user (within the caller's assign scope), or to the pool (None)."""
        er = self._readable(entity)
        if not er.entity.owned:
            raise BadRequest("bad_payload", detail=Message("no_owner", {"entity": er.entity.label}))
        try:
            owner = er.validator.checks["owner"](owner)
        except Invalid:
            raise BadRequest("bad_payload", detail=Message("owner_payload")) from None
        with self.db.connect() as conn:
            old = self._load(er, conn, record_id)
            target_team = self._active_user_team(conn, owner) if owner is not None else None
        if not self.access.check(er, "assign", old)[0]:
            raise Forbidden("forbidden_action", action="assign", entity=er.entity.label)
        if owner is None and not er.entity.pooled:
            raise BadRequest("not_pooled", entity=er.entity.label)
        if owner is not None and not self.access.may_assign_to(er, target_team):
            raise Forbidden("assign_target")
        if owner == old["owner"]:
            return self._out(er, old)
        return self._set_owner(er, old, owner, target_team, "assign")

    # -- internals -----------------------------------------------------------------------------
    def _last_action(self, er: EntityRuntime, record_id: str) -> str | None:
        """What last happened to the record. A record that left the pool by a claim was in the pool,
        where every pool user could see it: saying it was claimed reveals nothing more."""
        audit_table = self.runtime.tables["audit"]
        with self.db.connect() as conn:
            return conn.scalar(sa.select(audit_table.c.action)
                               .where(audit_table.c.entity == er.name, audit_table.c.record_id == record_id)
                               .order_by(audit_table.c.id.desc()).limit(1))

    def _pooled_record(self, entity: str, record_id: str):
        er = self._readable(entity)
        if not er.entity.pooled:
            raise BadRequest("not_pooled", entity=er.entity.label)
        with self.db.connect() as conn:
            return er, self._load(er, conn, record_id)

    def _active_user_team(self, conn, user_id: str) -> str | None:
        users = self.runtime.tables["users"]
        row = conn.execute(sa.select(users.c.team_id).where(users.c.id == user_id, users.c.active)).first()
        if row is None:
            raise NotFound("not_found", entity="user", id=user_id)
        return row.team_id

    def _set_owner(self, er: EntityRuntime, old: dict, owner: str | None, team: str | None,
                   action: str) -> dict[str, Any]:
        now, actor_id = self.clock(), self.actor.id if self.actor else None
        table = er.table
        with self.db.begin() as conn:
            previous = table.c.owner.is_(None) if old["owner"] is None else table.c.owner == old["owner"]
            result = conn.execute(table.update().where(table.c.id == old["id"], previous).values(
                owner=owner, team=team, version=table.c.version + 1, updated_at=now, updated_by=actor_id))
            if result.rowcount != 1:
                raise Conflict("already_owned")
            version = conn.scalar(sa.select(table.c.version).where(table.c.id == old["id"]))
            record = {**old, "owner": owner, "team": team, "version": version, "updated_at": now,
                      "updated_by": actor_id}
            rollups.maintain(self.runtime, conn, er, old, record)  # a rollup may count by owner or team
            self._move_followers(conn, er, record)
            audit.write(conn, self.runtime.tables["audit"], er, old["id"], version, action, actor_id, now,
                        audit.diff(er.to_json(old), er.to_json(record), ("owner", "team")))
        self._after_commit(self._event(er, "update", record, old, {"owner", "team"}))
        return self._out(er, record)
