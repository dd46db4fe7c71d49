"""One actor's access, for one request: record scopes as SQL predicates, the same checks on a
loaded record, field masks, and explanations of every decision.

The SQL predicate and the Python check are built from the same policy, so a list can never show a
record that a get would refuse, and ``explain`` gives the reasons the enforcement used.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from .accounts import Actor
from .policy import EntityPolicy, no_access, system_access
from .runtime import EntityRuntime, Runtime


@functools.lru_cache(maxsize=16)
def _teams_below(teams: sa.Table) -> sa.Select:
    """Ids of team ``:team`` and every team below it. Built once per teams table (building the
    recursive CTE costs more than running it), executed with the team as a parameter."""
    down = sa.select(teams.c.id).where(teams.c.id == sa.bindparam("team")).cte("down", recursive=True)
    down = down.union_all(sa.select(teams.c.id).join(down, teams.c.parent_id == down.c.id))
    return sa.select(down.c.id)


@functools.lru_cache(maxsize=16)
def _team_names_up(teams: sa.Table) -> sa.Select:
    """Names of team ``:team`` and every team above it (built once, like :func:`_teams_below`)."""
    up = sa.select(teams.c.parent_id, teams.c.name).where(teams.c.id == sa.bindparam("team")).cte("up", recursive=True)
    up = up.union_all(sa.select(teams.c.parent_id, teams.c.name).join(up, teams.c.id == up.c.parent_id))
    return sa.select(up.c.name)


def _parent_action(action: str) -> str:
    """What a detail's ``action`` needs on its parent: reading it to read, updating it to write."""
    return "read" if action in ("read", "export") else "update"


#: Actions a sharing rule at each level grants.
SHARE_ACTIONS = {"read": ("read",), "write": ("read", "update")}


class Access:
    """``actor=None`` is the trusted system context (CLI, demo data, background jobs): unrestricted.
    Interfaces that serve people always resolve a user first (the API answers 401 otherwise)."""

    def __init__(self, runtime: Runtime, db: sa.Engine, actor: Actor | None):
        self.runtime, self.db, self.actor = runtime, db, actor
        self.user = actor.as_expression_user() if actor else {}

    # -- the org tree --------------------------------------------------------------------------
    # Permission checks need only the actor's branch of the tree: the teams above the actor's team
    # (sharing rules for "team X or below") and the teams below it (subtree scope), each one
    # recursive query over the parent index, made when first needed. The whole table is read only
    # to name teams in explanations.
    @cached_property
    def _teams(self) -> tuple[dict[str, str | None], dict[str, str]]:
        teams = self.runtime.tables["teams"]
        with self.db.connect() as conn:
            rows = conn.execute(sa.select(teams.c.id, teams.c.parent_id, teams.c.name)).all()
        return {r.id: r.parent_id for r in rows}, {r.id: r.name for r in rows}

    def team_name(self, team_id: str | None) -> str | None:
        return self._teams[1].get(team_id) if team_id else None

    def subtree(self, team_id: str | None) -> frozenset[str]:
        """The team and every team below it."""
        if team_id is None:
            return frozenset()
        with self.db.connect() as conn:
            return frozenset(conn.scalars(_teams_below(self.runtime.tables["teams"]), {"team": team_id}))

    @cached_property
    def my_subtree(self) -> frozenset[str]:
        return self.subtree(self.actor.team if self.actor else None)

    @cached_property
    def _my_branch(self) -> frozenset[str]:
        """Names of the actor's team and every team above it."""
        if self.actor is None or self.actor.team is None:
            return frozenset()
        if self.actor.branch is not None:  # read with the token, in the same query
            return self.actor.branch
        with self.db.connect() as conn:
            return frozenset(conn.scalars(_team_names_up(self.runtime.tables["teams"]), {"team": self.actor.team}))

    def _in_team(self, team_name: str | None) -> bool:
        """Whether the actor is in the named team or below it (None: no team restriction)."""
        return team_name is None or team_name in self._my_branch

    # -- policies ------------------------------------------------------------------------------
    def policy(self, er: EntityRuntime) -> EntityPolicy:
        if self.actor is None:
            return system_access(er.entity)
        by_entity = self.runtime.policies.get(self.actor.role)
        return by_entity[er.name] if by_entity else no_access(er.entity, self.actor.role)

    def sees_entity(self, er: EntityRuntime) -> bool:
        """Whether the entity exists as far as this actor can tell."""
        policy = self.policy(er)
        return policy.scope("read") != "none" or policy.scope("create") != "none" or policy.pool \
            or bool(self.shares(er, "read"))

    def shares(self, er: EntityRuntime, action: str):
        return [s for s in self.policy(er).shares if action in SHARE_ACTIONS[s.level] and self._in_team(s.team)]

    # -- record scope in SQL -------------------------------------------------------------------
    def clause(self, er: EntityRuntime, action: str):
        """SQL predicate: the records of ``er`` this actor may ``action``. A detail's records are those
        whose parent the actor may read (to read) or update (to write): ``EXISTS`` over the parent
        with the parent's own predicate, which the database answers from the reference's index."""
        policy, table = self.policy(er), er.table
        scope = policy.scope(action)
        parent = er.entity.parent
        if parent is not None:
            if scope == "none":
                return sa.false()
            master = self.runtime.entities[parent.target]
            wanted = _parent_action(action)
            if er.entity.follows_owner and not self.shares(master, wanted) \
                    and not (wanted == "read" and self.policy(master).pool):
                # The parent's scope, on the owner and team the detail carries: indexed like any list.
                return self._scope_clause(er, self.policy(master).scope(wanted), owned=True)
            over = self.clause(master, wanted)
            if isinstance(over, sa.sql.elements.True_):
                return over  # every parent: every detail (the reference is required and checked)
            return sa.exists().where(master.table.c.id == table.c[parent.name], over)
        parts = [self._scope_clause(er, scope)]
        if action in ("read", "claim") and policy.pool:
            parts.append(table.c.owner.is_(None))
        parts += [share.clause(table, self.user) for share in self.shares(er, action)]
        return sa.or_(*parts) if len(parts) > 1 else parts[0]

    def clause_key(self, er: EntityRuntime, action: str) -> tuple:
        """Everything :meth:`clause` depends on, as a hashable key: two keys are equal only if the two
        clauses are the same SQL. It names the actor, so statements cached by it are never shared
        between users (a team move, a role change or a new catalog makes a new key)."""
        policy = self.policy(er)
        scope = policy.scope(action)
        actor = self.actor
        parent = er.entity.parent
        if parent is not None:
            master = self.runtime.entities[parent.target]
            return (action, policy.role, scope, "detail", self.clause_key(master, _parent_action(action)))
        if actor is None:
            return (action, policy.role, scope)
        return (action, policy.role, scope, actor.id, actor.username, actor.team,
                self.my_subtree if scope == "subtree" else None,
                tuple(id(share) for share in self.shares(er, action)))

    def _scope_clause(self, er: EntityRuntime, scope: str, owned: bool | None = None):
        if scope == "none":
            return sa.false()
        if scope == "all" or not (er.entity.owned if owned is None else owned):
            return sa.true()
        table = er.table
        if scope == "own":
            return table.c.owner == self.actor.id
        if scope == "team":
            return table.c.team == self.actor.team if self.actor.team else sa.false()
        return table.c.team.in_(sorted(self.my_subtree)) if self.my_subtree else sa.false()

    # -- the same decisions on a loaded record, with reasons -----------------------------------
    def check(self, er: EntityRuntime, action: str, record: Mapping[str, Any] | None,
              locks: bool = True) -> tuple[bool, list[str]]:
        """Whether the actor may ``action`` the record, with reasons. ``locks=False`` leaves out the
        role's ``readonly_if`` (a parent's lock covers the parent's fields, not its details)."""
        policy = self.policy(er)
        scope = policy.scope(action)
        reasons = [f"role '{policy.role}' grants {action} on {er.name} with scope '{scope}'"
                   if policy.role in self.runtime.policies else f"role '{policy.role}' is not defined: no access"]
        if record is None or scope == "none" and not policy.shares and not policy.pool:
            return scope != "none", reasons
        if er.entity.parent is not None:
            return self._check_detail(er, action, record, reasons, locks)
        allowed = self._record_in_scope(er, scope, record, reasons)
        if not allowed and action in ("read", "claim") and policy.pool and record.get("owner") is None:
            allowed = True
            reasons.append(f"the record is in the public pool, which role '{policy.role}' may see")
        if not allowed:
            for share in self.shares(er, action):
                if share.condition.evaluate(record, None, self.user):
                    allowed = True
                    reasons.append(f"the record matches sharing rule '{share.name or share.condition.source}' "
                                   f"of role '{share.role}' (level {share.level})")
                    break
        if allowed and locks and action in ("update", "delete") and policy.readonly_if is not None \
                and policy.readonly_if.evaluate(record, None, self.user):
            allowed = False
            reasons.append(f"the record is read-only to role '{policy.role}' ({policy.readonly_if.source})")
        return allowed, reasons

    def _check_detail(self, er: EntityRuntime, action: str, record, reasons: list[str],
                      locks: bool = True) -> tuple[bool, list[str]]:
        """A detail record is allowed exactly when its parent is (read: read; any write: update)."""
        parent = er.entity.parent
        master = self.runtime.entities[parent.target]
        wanted = _parent_action(action)
        with self.db.connect() as conn:
            row = conn.execute(sa.select(master.table).where(master.table.c.id == record.get(parent.name))).mappings().first()
        reasons.append(f"{er.name} records are details of their {master.name}: {action} follows {wanted} "
                       f"of {master.name} {record.get(parent.name)}")
        if row is None:
            reasons.append(f"the {master.name} does not exist")
            return False, reasons
        allowed, more = self.check(master, wanted, master.from_row(row), locks=False)
        reasons += more
        if allowed and locks and action in ("update", "delete") and self.policy(er).readonly_if is not None \
                and self.policy(er).readonly_if.evaluate(record, None, self.user):
            allowed = False
            reasons.append(f"the record is read-only to role '{self.policy(er).role}' ({self.policy(er).readonly_if.source})")
        return allowed, reasons

    def _record_in_scope(self, er: EntityRuntime, scope: str, record, reasons: list[str]) -> bool:
        if scope == "none":
            return False
        if scope == "all" or not er.entity.owned:
            reasons.append("scope 'all' covers every record" if scope == "all" else f"{er.name} records have no owner")
            return True
        owner, team = record.get("owner"), record.get("team")
        if scope == "own":
            ok = owner == self.actor.id
            reasons.append("the user owns the record" if ok else "the record is owned by someone else")
        elif scope == "team":
            ok = team is not None and team == self.actor.team
            reasons.append(f"the record's team '{self.team_name(team)}' is "
                           f"{'' if ok else 'not '}the user's team '{self.team_name(self.actor.team)}'")
        else:
            ok = team in self.my_subtree
            reasons.append(f"the record's team '{self.team_name(team)}' is {'' if ok else 'not '}in the subtree "
                           f"of the user's team '{self.team_name(self.actor.team)}'")
        return ok

    # -- fields --------------------------------------------------------------------------------
    def field_access(self, er: EntityRuntime, name: str) -> str:
        policy = self.policy(er)
        if name in policy.hidden:
            return "hidden"
        if name in policy.readonly or name in er.validator.readonly:
            return "read"
        return "write"

    def may_assign_to(self, er: EntityRuntime, team_id: str | None) -> bool:
        """Whether the actor may give a record of ``er`` to a user of team ``team_id``."""
        scope = self.policy(er).scope("assign")
        return scope == "all" or (scope == "subtree" and team_id in self.my_subtree) \
            or (scope == "team" and team_id is not None and team_id == (self.actor.team if self.actor else None))
