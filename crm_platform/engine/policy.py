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
    #: Paths across references (``machine_model.dealer_cost``) through a field this role may not see.
    hidden_paths: frozenset[str] = frozenset()

    def scope(self, action: str) -> str:
        return self.scopes.get(action, "none")

    def may_write(self, name: str) -> bool:
        return name not in self.hidden and name not in self.readonly


def _entity_policy(role: RoleDef, entity: EntityDef, shares: tuple[Share, ...],
                   derived: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())) -> EntityPolicy:
    """``derived``: computed fields hidden because they would reveal something hidden (:func:`_derived_hidden`)."""
    grant = role.grant(entity.name)
    if grant is None:
        scopes, pool, rules, readonly_if = {}, False, {}, None
    else:
        scopes = {a: s for a, s in grant.actions.items() if s != "none"}
        pool, rules = grant.pool and entity.pooled, dict(role.entities.get(entity.name, grant).fields)
        readonly_if = grant.readonly_if if entity.name in role.entities else None
    hidden = {name for name, level in rules.items() if level == "hidden"} | derived[0]
    readonly = {name for name, level in rules.items() if level == "read"}
    return EntityPolicy(role.name, entity.name, MappingProxyType(scopes), pool, frozenset(hidden),
                        frozenset(readonly - hidden), readonly_if, shares, MappingProxyType(rules), derived[1])


def compile_policies(catalog: Catalog) -> Mapping[str, Mapping[str, EntityPolicy]]:
    """role → entity → policy. Sharing conditions that cannot run in SQL are definition errors."""
    problems: list[Problem] = []
    policies = {}
    for role in catalog.roles.values():
        shares: dict[str, list[Share]] = {}
        for index, rule in enumerate(role.sharing):
            entity = catalog.entities[rule.entity]
            columns = {f.name for f in entity.fields if f.stored and f.type != "geo"} | set(entity.system_fields())
            try:
                clause = to_sql(rule.condition.source, columns)
            except NotTranslatable as exc:
                problems.append(Problem(role.source, f"/sharing/{index}/condition", str(exc)))
                continue
            shares.setdefault(rule.entity, []).append(
                Share(rule.name, role.name, rule.condition, clause, rule.level, rule.team))
        derived = _derived_hidden(catalog, role)
        policies[role.name] = MappingProxyType({
            e.name: _entity_policy(role, e, tuple(shares.get(e.name, ())), derived[e.name])
            for e in catalog.entities.values()})
    if problems:
        raise DefinitionError(problems)
    return MappingProxyType(policies)


def _rules(role: RoleDef, entity: EntityDef) -> Mapping[str, str]:
    grant = role.grant(entity.name)
    return role.entities.get(entity.name, grant).fields if grant is not None else {}


def _derived_hidden(catalog: Catalog, role: RoleDef) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """entity → (the computed fields this role may not see because they would reveal what it may not
    see: a formula over a hidden field (or over such a formula), a lookup or formula reading a path
    through a hidden field of another entity; the paths it reads through a hidden field). Settled
    over the whole catalog, since a path's end may itself be hidden only because of what it reads."""
    hidden = {e.name: {n for n, level in _rules(role, e).items() if level == "hidden"}
              for e in catalog.entities.values()}
    derived: dict[str, set[str]] = {name: set() for name in hidden}

    def path_hidden(entity: EntityDef, path: str) -> bool:
        *hops, last = path.split(".")
        for name in hops:
            if name in hidden[entity.name]:
                return True
            entity = catalog.entities[entity.field(name).target]
        return last in hidden[entity.name]

    changed = True
    while changed:
        changed = False
        for entity in catalog.entities.values():
            for f in entity.fields:
                if f.name in hidden[entity.name]:
                    continue
                reads = set(f.expression.names) if f.expression is not None else set()
                if f.lookup:
                    reads.add(f.lookup)
                if reads & hidden[entity.name] or any(path_hidden(entity, p) for p in reads if "." in p) \
                        or f.rollup is not None and _rollup_reads(f.rollup) & hidden[f.rollup.entity]:
                    hidden[entity.name].add(f.name)
                    derived[entity.name].add(f.name)
                    changed = True
    paths = {e.name: frozenset(p for f in e.fields for p in _reads(f) if "." in p and path_hidden(e, p))
             for e in catalog.entities.values()}
    return {name: (frozenset(names), paths[name]) for name, names in derived.items()}


def _rollup_reads(rollup) -> set[str]:
    """The child fields a rollup summarises or filters on: a summary of a hidden field reveals it."""
    return {*([rollup.field] if rollup.field else []), *(rollup.where.names if rollup.where is not None else ())}


def _reads(f) -> set[str]:
    """Every name a field's definition reads (expressions, lookup, fetch)."""
    names = {p for p in (f.lookup, f.fetch_from) if p}
    for expression in (f.expression, f.default_expr, f.required_if, f.readonly_if, f.visible_if):
        if expression is not None:
            names |= expression.names
    return names


def no_access(entity: EntityDef, role: str) -> EntityPolicy:
    """The policy of a user whose role is not defined (e.g. removed from the packs): nothing."""
    return EntityPolicy(role, entity.name, MappingProxyType({}), False, frozenset(), frozenset(), None, (),
                        MappingProxyType({}))


def system_access(entity: EntityDef) -> EntityPolicy:
    """The trusted system context (no actor): every action on every record, every field."""
    return EntityPolicy("system", entity.name, MappingProxyType({a: "all" for a in ACTIONS}), entity.pooled,
                        frozenset(), frozenset(), None, (), MappingProxyType({}))


__all__ = ["EntityPolicy", "Share", "compile_policies", "no_access"]
