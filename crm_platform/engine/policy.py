"""Roles compiled once per runtime into per-entity policies: scopes, pool access, field masks,
conditional read-only and sharing rules (with their SQL form)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from crm_platform.metadata.errors import DefinitionError, Problem
from crm_platform.metadata.expressions import Expression
from crm_platform.metadata.model import ACTIONS, Catalog, EntityDef, RoleDef

from .sqlexpr import Clause, NotTranslatable, to_sql



@dataclass(frozen=True)
class Share:
    name: str | None
    role: str
    condition: Expression
    clause: Clause
    level: str  # read | write
    team: str | None  # only for holders of the role in this team (or below it)


@dataclass(frozen=True)
class EntityPolicy:
    """What one role may do with one entity."""

    role: str
    entity: str
    scopes: Mapping[str, str]
    pool: bool
    hidden: frozenset[str]
    readonly: frozenset[str]  # readable but not writable (explicit "read", and formulas over hidden fields)
    readonly_if: Expression | None
    shares: tuple[Share, ...]
    field_rules: Mapping[str, str]

    def scope(self, action: str) -> str:
        return self.scopes.get(action, "none")

    def may_write(self, name: str) -> bool:
        return name not in self.hidden and name not in self.readonly


def _entity_policy(role: RoleDef, entity: EntityDef, shares: tuple[Share, ...]) -> EntityPolicy:
    grant = role.grant(entity.name)
    if grant is None:
        scopes, pool, rules, readonly_if = {}, False, {}, None
    else:
        scopes = {a: s for a, s in grant.actions.items() if s != "none"}
        pool, rules = grant.pool and entity.pooled, dict(role.entities.get(entity.name, grant).fields)
        readonly_if = grant.readonly_if if entity.name in role.entities else None
    hidden = {name for name, level in rules.items() if level == "hidden"}
    readonly = {name for name, level in rules.items() if level == "read"}
    for f in entity.fields:  # a formula over a hidden field would reveal it
        if f.expression is not None and f.expression.names & hidden:
            hidden.add(f.name)
    return EntityPolicy(role.name, entity.name, MappingProxyType(scopes), pool, frozenset(hidden),
                        frozenset(readonly - hidden), readonly_if, shares, MappingProxyType(rules))


def compile_policies(catalog: Catalog) -> Mapping[str, Mapping[str, EntityPolicy]]:
    """role → entity → policy. Sharing conditions that cannot run in SQL are definition errors."""
    problems: list[Problem] = []
    policies = {}
    for role in catalog.roles.values():
        shares: dict[str, list[Share]] = {}
        for index, rule in enumerate(role.sharing):
            entity = catalog.entities[rule.entity]
            columns = {f.name for f in entity.fields if f.type not in ("formula", "geo")} | set(entity.system_fields())
            try:
                clause = to_sql(rule.condition.source, columns)
            except NotTranslatable as exc:
                problems.append(Problem(role.source, f"/sharing/{index}/condition", str(exc)))
                continue
            shares.setdefault(rule.entity, []).append(
                Share(rule.name, role.name, rule.condition, clause, rule.level, rule.team))
        policies[role.name] = MappingProxyType({
            e.name: _entity_policy(role, e, tuple(shares.get(e.name, ()))) for e in catalog.entities.values()})
    if problems:
        raise DefinitionError(problems)
    return MappingProxyType(policies)


def no_access(entity: EntityDef, role: str) -> EntityPolicy:
    """The policy of a user whose role is not defined (e.g. removed from the packs): nothing."""
    return EntityPolicy(role, entity.name, MappingProxyType({}), False, frozenset(), frozenset(), None, (),
                        MappingProxyType({}))


def system_access(entity: EntityDef) -> EntityPolicy:
    """The trusted system context (no actor): every action on every record, every field."""
    return EntityPolicy("system", entity.name, MappingProxyType({a: "all" for a in ACTIONS}), entity.pooled,
                        frozenset(), frozenset(), None, (), MappingProxyType({}))


__all__ = ["EntityPolicy", "Share", "compile_policies", "no_access"]
