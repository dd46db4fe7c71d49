"""Rollup fields: stored summaries of child records, kept right in the transaction of every child write.

A write to a child (create, update, delete, a change of its reference — re-parenting — or of any
field the summary reads, owner included) recomputes the summary of each parent concerned, old and
new: the parent's row is locked (``SELECT ... FOR UPDATE``), then the summary is computed by a
query and stored. Under PostgreSQL's READ COMMITTED the aggregate, a statement issued after the
lock was granted, sees every child committed by whoever held the lock before — so two payments
saved at once both count. SQLite writers are serialised by ``BEGIN IMMEDIATE``.

Recomputing rather than adding a delta keeps ``min``/``max``/``avg`` right and makes every write
self-healing; the cost is one indexed aggregate over one parent's children. ``rebuild`` recomputes
every parent and reports the drift it corrected.

Sums and counts over no children are 0; ``min``/``max``/``avg`` over none are blank.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.metadata.errors import DefinitionError, Problem
from crm_platform.metadata.model import FieldDef

from .errors import RecordInvalid
from .messages import Message
from .sqlexpr import NotTranslatable, to_sql

if TYPE_CHECKING:
    from .runtime import EntityRuntime, Runtime

_SQL = {"sum": sa.func.sum, "count": sa.func.count, "min": sa.func.min, "max": sa.func.max, "avg": sa.func.avg}


@dataclass(frozen=True)
class RollupPlan:
    """One rollup field compiled: what it summarises, and which child fields it reads."""
    parent: str
    field: FieldDef
    child: str
    via: str
    function: str
    source: str | None
    where: Any  # a sqlexpr clause builder, or None
    reads: frozenset[str]
    #: The summarised field is a formula: computed from each child's row, then summarised here.
    computed: bool = False


def compile_plans(entities: Mapping[str, EntityRuntime]) -> Mapping[str, tuple[RollupPlan, ...]]:
    """child entity → the rollups over it. A ``where`` that cannot run in SQL is a definition error."""
    plans: dict[str, list[RollupPlan]] = {}
    problems = []
    for er in entities.values():
        for f in er.entity.fields:
            rollup = f.rollup
            if rollup is None:
                continue
            child = entities[rollup.entity]
            where = None
            if rollup.where is not None:
                try:
                    where = to_sql(rollup.where.source, set(child.columns))
                except NotTranslatable as exc:
                    problems.append(Problem(f.origin[0], f"{f.origin[1]}/rollup/where", str(exc)))
                    continue
            source = child.entity.field(rollup.field) if rollup.field else None
            computed = source is not None and source.type == "formula"
            reads = {rollup.via, *([rollup.field] if rollup.field else []),
                     *(rollup.where.names if rollup.where is not None else ()),
                     *(_inputs(child, source) if computed else ())}
            plans.setdefault(child.name, []).append(RollupPlan(
                er.name, f, child.name, rollup.via, rollup.function, rollup.field, where, frozenset(reads), computed))
    if problems:
        raise DefinitionError(problems)
    return {name: tuple(items) for name, items in plans.items()}


def _inputs(child: EntityRuntime, formula: FieldDef) -> set[str]:
    """The stored fields a formula reads, through the formulas it reads."""
    formulas = {f.name: f for f in child.formulas}
    seen, todo = set(), [formula.name]
    while todo:
        for name in formulas[todo.pop()].expression.names:
            if name not in seen:
                seen.add(name)
                if name in formulas:
                    todo.append(name)
    return seen


def maintain(runtime: Runtime, conn: sa.Connection, child: EntityRuntime, old: Mapping | None,
             new: Mapping | None, skip: tuple[str, str] | None = None) -> None:
    """After a write to a record of ``child`` (``old``/``new`` None on create/delete), in its transaction:
    recompute the rollups of every parent the write concerns. ``skip`` names a parent being deleted."""
    concerned: dict[tuple[str, str], list[RollupPlan]] = {}
    for plan in runtime.rollup_plans.get(child.name, ()):
        if old is not None and new is not None and all(old.get(n) == new.get(n) for n in plan.reads):
            continue
        for record in (old, new):
            parent_id = record.get(plan.via) if record is not None else None
            if parent_id is not None and (plan.parent, parent_id) != skip:
                plans = concerned.setdefault((plan.parent, parent_id), [])
                if plan not in plans:
                    plans.append(plan)
    for (parent, parent_id), plans in sorted(concerned.items()):  # one lock order for every writer
        if not _recompute(runtime, conn, runtime.entities[parent], parent_id, plans) \
                and new is not None and new.get(plans[0].via) == parent_id:
            # Deleted by a concurrent transaction after this write checked it: refuse, like a
            # reference to a record that does not exist, rather than leave an orphan.
            label = runtime.entities[parent].entity.label
            raise RecordInvalid({plans[0].via: [Message("reference", {"target": label, "value": parent_id})]})


def _recompute(runtime: Runtime, conn: sa.Connection, parent: EntityRuntime, parent_id: str,
               plans: list[RollupPlan]) -> bool:
    """Lock the parent's row and store its summaries; False if the parent is gone. (SQLite: its
    write transactions run one at a time, so the row needs no lock; the UPDATE's count tells.)"""
    table, cache = parent.table, parent.statement_cache
    locking = conn.dialect.name != "sqlite"
    if locking and conn.scalar(_cached(cache, ("lock",), lambda: sa.select(table.c.id).where(
            table.c.id == sa.bindparam("crm_parent")).with_for_update()), {"crm_parent": parent_id}) is None:
        return False
    values = parent.to_row({plan.field.name: _aggregate(runtime, conn, plan, parent_id) for plan in plans})
    update = _cached(cache, ("store", tuple(values)),
                     lambda: table.update().where(table.c.id == sa.bindparam("crm_parent")))
    return conn.execute(update, {**values, "crm_parent": parent_id}).rowcount == 1 or locking


def _cached(cache: dict, key: tuple, build):
    statement = cache.get(key)
    if statement is None:
        statement = cache[key] = build()
    return statement


def _aggregate(runtime: Runtime, conn: sa.Connection, plan: RollupPlan, parent_id: str):
    """The summary over one parent's children, by a statement built once per plan and way of computing."""
    child = runtime.entities[plan.child]
    table = child.table
    python = plan.computed or plan.function != "count" and _in_python(conn, plan, table.c[plan.source])
    key = ("aggregate", plan.parent, plan.field.name, python)

    def build():
        where = [table.c[plan.via] == sa.bindparam("crm_parent")]
        if plan.where is not None:
            where.append(plan.where(table, {}))
        if plan.function == "count":
            return sa.select(sa.func.count()).select_from(table).where(*where)
        if plan.computed:
            return sa.select(table).where(*where)
        column = table.c[plan.source]
        if python:
            return sa.select(column).where(*where)
        return sa.select(_SQL[plan.function](column, type_=column.type)).where(*where)
    statement = _cached(child.statement_cache, key, build)
    parameters = {"crm_parent": parent_id}
    if plan.function == "count" or not python:
        return finish(plan.field, conn.scalar(statement, parameters))
    if plan.computed:
        values = []
        for row in conn.execute(statement, parameters).mappings():
            record = child.from_row(row)
            child.compute(record)
            if record[plan.source] is not None:
                values.append(record[plan.source])
    else:
        values = [v for v in conn.scalars(statement, parameters) if v is not None]
    return finish(plan.field, _python(plan.function, values))


def _in_python(conn: sa.Connection, plan: RollupPlan, column: sa.Column) -> bool:
    """SQLite keeps exact numbers as text keys (see :mod:`.decimals`), which it cannot add up: sums
    and averages of them are computed here, exactly. Everything else is computed by the database."""
    return conn.dialect.name == "sqlite" and plan.function in ("sum", "avg") \
        and not isinstance(column.type, sa.BigInteger)


def _python(function: str, values: list):
    if not values:
        return None
    if function == "sum":
        return sum(values, Decimal(0))
    if function == "avg":
        return sum(values, Decimal(0)) / len(values)
    return min(values) if function == "min" else max(values)


def empty(f: FieldDef):
    """What a rollup holds over no children: 0 for a sum or a count, blank otherwise."""
    return finish(f, 0) if f.rollup.function in ("sum", "count") else None


def finish(f: FieldDef, value):
    """The summary as the rollup field stores it, rounded to its places."""
    if value is None:
        return empty(f)
    if f.type == "integer":
        return int(value)
    if f.type in ("decimal", "currency", "percent"):
        places = f.precision if f.precision is not None else 2
        return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return value


def rebuild(runtime: Runtime, conn: sa.Connection, entities: Iterable[str] | None = None,
            fields: Iterable[tuple[str, str]] | None = None) -> list[dict]:
    """Recompute every rollup of ``entities`` (default: all; or just the ``(entity, field)`` pairs in
    ``fields``) for every parent; store and report what differed:
    ``[{"entity", "field", "parents", "corrected", "examples"}]``."""
    wanted = set(entities) if entities is not None else None
    pairs = set(fields) if fields is not None else None
    report = []
    for plans in runtime.rollup_plans.values():
        for plan in plans:
            if wanted is not None and plan.parent not in wanted \
                    or pairs is not None and (plan.parent, plan.field.name) not in pairs:
                continue
            parent = runtime.entities[plan.parent]
            table, name = parent.table, plan.field.name
            corrected, examples, total = 0, [], 0
            for row in conn.execute(sa.select(table.c.id, table.c[name]).order_by(table.c.id)).all():
                total += 1
                value = _aggregate(runtime, conn, plan, row.id)
                if value != row[1]:
                    conn.execute(table.update().where(table.c.id == row.id).values(parent.to_row({name: value})))
                    corrected += 1
                    if len(examples) < 5:
                        examples.append(row.id)
            report.append({"entity": plan.parent, "field": name, "parents": total, "corrected": corrected,
                           "examples": examples})
    return report
