"""Compiling a catalog into a runtime: tables, validators, formulas and defaults, built once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from crm_platform.metadata.errors import ExpressionLimitError
from crm_platform.metadata.model import Catalog, EntityDef, FieldDef
from crm_platform.metadata.paths import SYSTEM_TYPES as PATH_SYSTEM_TYPES

from .errors import NotFound
from .fieldtypes import TYPES, FieldType
from .policy import EntityPolicy, compile_policies
from .rollups import compile_plans
from .system_fields import DATETIME_SYSTEM_FIELDS as _DATETIME_SYSTEM
from .tables import entity_table, system_tables
from .validation import RecordValidator

#: Key of a record dict holding the paths whose source record the caller may not read (never output).
HIDE = "crm:blocked"


def _utc_iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo is UTC else value.astimezone(UTC)).isoformat()


@dataclass(frozen=True, eq=False)
class EntityRuntime:
    """Everything the record service needs about one entity, derived once from its definition."""

    entity: EntityDef
    table: sa.Table
    validator: RecordValidator
    stored: tuple[tuple[FieldDef, FieldType], ...]
    formulas: tuple[FieldDef, ...]
    defaults: tuple[FieldDef, ...]
    references: tuple[FieldDef, ...]
    autonumbers: tuple[FieldDef, ...]
    incoming: tuple[tuple[str, str], ...] = ()  # (entity, field) references pointing here
    system: tuple[str, ...] = field(default=())
    #: Lookup fields (read across references on every read; never stored).
    lookups: tuple[FieldDef, ...] = ()
    #: Every path (``account.industry``) a lookup, fetch, formula, default or rule of this entity reads.
    paths: frozenset[str] = frozenset()
    #: (detail entity, its reference here) of the details whose rows carry this entity's owner and team.
    followers: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.entity.name

    @cached_property
    def columns(self) -> frozenset[str]:
        """Names a record dict may carry into a row: system columns and stored fields."""
        return frozenset(self.system) | {f.name for f, _ in self.stored}

    @cached_property
    def audited(self) -> tuple[str, ...]:
        """What the audit trail records: every stored field, and stage/owner/team."""
        return tuple(f.name for f, _ in self.stored) + tuple(n for n in ("stage", "owner", "team") if n in self.system)

    def from_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A record of Python values from a table row, formulas computed — unless the entity reads
        across references: then the caller resolves its paths first (:mod:`.lookups`) and computes."""
        record = {name: row[name] if kind is None else kind.from_row(f, row) for name, f, kind in self._row_plan}
        if not self.paths:
            self.compute(record)
        return record

    @cached_property
    def statement_cache(self) -> dict:
        """Statements (and column plans) built once for this entity by :mod:`.lookups` and :mod:`.rollups`."""
        return {}

    @property
    def row_plan(self) -> tuple[tuple[str, FieldDef | None, FieldType | None], ...]:
        return self._row_plan

    @cached_property
    def _row_plan(self) -> tuple[tuple[str, FieldDef | None, FieldType | None], ...]:
        """(name, field, type or None) per column in record order; None: the row value is the Python
        value (most of them), so it is copied without a call."""
        plain = FieldType.from_row
        return tuple((name, None, None) for name in self.system) + tuple(
            (f.name, f, None if type(kind).from_row is plain else kind) for f, kind in self.stored)

    def records_to_json(self, records, hidden: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """A page of records (from :meth:`from_row`, completed) as JSON: each record's dict is converted
        in place instead of copied (same keys, order and values as ``to_json(record, hidden)``)."""
        _, formulas, converters = self._json_plans.get(hidden) or self._json_plan(hidden)
        gone = [name for name in hidden if name in self.columns or name in self._formula_names] + sorted(self.paths)
        formula = TYPES["formula"]
        page = []
        for record in records:
            for name, convert in converters:
                record[name] = convert(record[name])
            for name in gone:
                del record[name]
            for name in self.unreadable(record.pop(HIDE, frozenset())):
                record.pop(name, None)
            for f, places in formulas:
                record[f.name] = formula.to_json(record[f.name], places)
            page.append(record)
        return page

    @cached_property
    def rollups(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.entity.fields if f.rollup is not None)

    @cached_property
    def fetches(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.entity.fields if f.fetch_from is not None)

    @cached_property
    def readers(self) -> Mapping[str, frozenset[str]]:
        """path → the lookups and formulas (directly or through other formulas) that show its value:
        what must be hidden from a caller who may not read the path's source record."""
        out: dict[str, set[str]] = {path: set() for path in self.paths}
        for f in self.lookups:
            out[f.lookup].add(f.name)
        for f in self.formulas:  # in dependency order: a formula's inputs are settled before it
            for path, names in out.items():
                if f.expression.names & (names | {path}):
                    names.add(f.name)
        return {path: frozenset(names) for path, names in out.items()}

    def unreadable(self, blocked: frozenset[str]) -> frozenset[str]:
        """The fields to hide from a caller for whom the paths in ``blocked`` are unreadable."""
        if not blocked:
            return frozenset()
        return frozenset().union(*(self.readers.get(path, ()) for path in blocked))

    @cached_property
    def _formula_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.formulas) | {f.name for f in self.lookups}

    def compute(self, record: dict[str, Any]) -> None:
        """Lookups (from the resolved paths) and formulas, in dependency order."""
        for f in self.lookups:
            record[f.name] = record.get(f.lookup)
        for f in self.formulas:
            try:
                record[f.name] = f.expression.evaluate(record)
            except ExpressionLimitError:
                record[f.name] = None

    def to_row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        row = {}
        for name, value in values.items():
            if self.entity.has_field(name):
                f = self.entity.field(name)
                row.update(TYPES[f.type].to_row(f, value))
            else:
                row[name] = value
        return row

    def to_json(self, record: Mapping[str, Any], hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The record as JSON, without the ``hidden`` fields (never converted, never copied)."""
        plan, formulas, _ = self._json_plans.get(hidden) or self._json_plan(hidden)
        get = record.get
        out = {name: get(name) if convert is None else convert(get(name)) for name, convert in plan}
        formula = TYPES["formula"]
        for f, places in formulas:
            out[f.name] = formula.to_json(get(f.name), places)
        return out

    def select_by_id(self, key: tuple, clause: Callable[[], Any]) -> sa.Select:
        """``SELECT * FROM <entity> WHERE id = :crm_id AND <clause>``, built once per clause key
        (:meth:`Access.clause_key`) and reused, so a read by id does not rebuild and re-key its
        statement on every request. Bounded: past 4096 callers the cache starts over."""
        statement = self._by_id.get(key)
        if statement is None:
            if len(self._by_id) >= 4096:
                self._by_id.clear()
            statement = sa.select(self.table).where(self.table.c.id == sa.bindparam("crm_id"), clause())
            self._by_id[key] = statement
        return statement

    @cached_property
    def _by_id(self) -> dict:
        return {}

    @cached_property
    def _json_plans(self) -> dict:
        return {}  # hidden set → plan; a few per entity (one per role's mask)

    def _json_plan(self, hidden: frozenset[str]):
        """(name, converter or None) for each visible system column and stored field, decided once per
        mask: most values are their own JSON, so a record costs one dict lookup per column and a call
        only where a type needs one."""
        plan = [(name, _utc_iso if name in _DATETIME_SYSTEM else None) for name in self.system if name not in hidden]
        plan += [(f.name, None if type(kind).to_json is FieldType.to_json else kind.to_json)
                 for f, kind in self.stored if f.name not in hidden]
        plan += [(f.name, None if type(TYPES[f.type]).to_json is FieldType.to_json else TYPES[f.type].to_json)
                 for f in self.lookups if f.name not in hidden]
        formulas = tuple((f, places) for f, places in self.formula_places if f.name not in hidden)
        converters = tuple((name, convert) for name, convert in plan if convert is not None)
        self._json_plans[hidden] = plan = (tuple(plan), formulas, converters)
        return plan

    @cached_property
    def formula_places(self) -> tuple[tuple[FieldDef, int | None], ...]:
        """Each formula with the places its numeric ``result_type`` shows (None: not a number)."""
        out = []
        for f in self.formulas:
            kind = TYPES.get(f.result_type or "")
            places = f.precision if f.precision is not None else getattr(kind, "default_precision", None)
            out.append((f, 0 if f.result_type == "integer" else places))
        return tuple(out)


@dataclass(frozen=True)
class Runtime:
    """A compiled catalog. One per catalog version; immutable; shared by every request."""

    catalog: Catalog
    metadata: sa.MetaData
    tables: Mapping[str, sa.Table]
    entities: Mapping[str, EntityRuntime]
    policies: Mapping[str, Mapping[str, EntityPolicy]]
    #: child entity → the rollups summarising it (:mod:`.rollups`).
    rollup_plans: Mapping[str, tuple] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.catalog.version

    def path_field(self, er: EntityRuntime, path: str) -> FieldDef:
        """The field a path ends at (a system field as a plain text/number/date definition)."""
        *hops, last = path.split(".")
        entity = er.entity
        for name in hops:
            entity = self.catalog.entities[entity.field(name).target]
        if entity.has_field(last):
            return entity.field(last)
        return FieldDef(last, PATH_SYSTEM_TYPES[last], {"en": last})

    def entity(self, name: str) -> EntityRuntime:
        try:
            return self.entities[name]
        except KeyError:
            raise NotFound("unknown_entity", entity=name) from None


def _in_order(formulas: list[FieldDef]) -> tuple[FieldDef, ...]:
    """Formulas so that each comes after the formulas it reads (the catalog refused cycles)."""
    by_name, done, out = {f.name: f for f in formulas}, set(), []

    def add(f: FieldDef) -> None:
        if f.name in done:
            return
        done.add(f.name)
        for name in sorted(f.expression.names & by_name.keys()):
            add(by_name[name])
        out.append(f)
    for f in formulas:
        add(f)
    return tuple(out)


def _paths(entity: EntityDef) -> frozenset[str]:
    """The paths an entity's definitions read across references."""
    read: set[str] = set()
    for f in entity.fields:
        read.update(p for p in (f.lookup, f.fetch_from) if p)
        for expression in (f.expression, f.default_expr, f.required_if, f.readonly_if, f.visible_if):
            if expression is not None:
                read.update(n for n in expression.names if "." in n)
    for rule in entity.validation_rules:
        read.update(n for n in rule.condition.names if "." in n)
    for stage in entity.stages:
        if stage.gate and stage.gate.condition:
            read.update(n for n in stage.gate.condition.names if "." in n)
    return frozenset(read)


def compile_runtime(catalog: Catalog) -> Runtime:
    metadata = sa.MetaData()
    tables = system_tables(metadata)
    incoming: dict[str, list[tuple[str, str]]] = {}
    for entity in catalog.entities.values():
        for f in entity.fields:
            if f.type == "reference" and f.stored:
                incoming.setdefault(f.target, []).append((entity.name, f.name))

    entities = {}
    for entity in catalog.entities.values():
        table = entity_table(entity, metadata)
        entities[entity.name] = EntityRuntime(
            entity=entity, table=table, validator=RecordValidator(entity, catalog.roles),
            stored=tuple((f, TYPES[f.type]) for f in entity.fields if TYPES[f.type].stored and f.lookup is None),
            formulas=_in_order([f for f in entity.fields if f.type == "formula"]),
            defaults=tuple(f for f in entity.fields if f.default is not None or f.default_expr is not None),
            references=tuple(f for f in entity.fields if f.type in ("reference", "user", "file") and f.stored),
            autonumbers=tuple(f for f in entity.fields if f.type == "autonumber"),
            incoming=tuple(incoming.get(entity.name, ())),
            system=entity.system_fields(),
            lookups=tuple(f for f in entity.fields if f.lookup is not None),
            paths=_paths(entity),
            followers=tuple((other.name, other.parent.name) for other in catalog.entities.values()
                            if other.follows_owner and other.parent.target == entity.name),
        )
    return Runtime(catalog, metadata, tables, entities, compile_policies(catalog), compile_plans(entities))
