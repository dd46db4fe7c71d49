"""Reading values across references: ``account.industry`` for a record, or for a page of records.

Every path an entity reads (its lookups, fetches, and the paths its formulas, defaults, conditions
and rules name) is resolved in one query per reference followed — for a page of fifty
opportunities, one query for their accounts and one for the accounts' regions — never a query per
row. Each query also asks, in SQL, whether the caller may read each record it returns (the
caller's read predicate as a column), so one round trip gives both the values, which rules and
formulas need whatever the caller may see, and what the caller may be shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.sql import util as sql_util

from .runtime import EntityRuntime, Runtime

READABLE = "crm_readable"


def resolve(runtime: Runtime, conn: sa.Connection, er: EntityRuntime, records: Sequence[dict], access,
            paths: Iterable[str] | None = None) -> list[frozenset[str]]:
    """Put ``record[path]`` into each record for every path (default: all the entity reads), and
    answer, per record, the paths whose source the caller may not read."""
    wanted = sorted(er.paths if paths is None else paths)
    blocked: list[set[str]] = [set() for _ in records]
    if wanted and records:
        _fill(runtime, conn, er, list(records), wanted, access, blocked)
    return [frozenset(b) for b in blocked]


def _fill(runtime: Runtime, conn: sa.Connection, er: EntityRuntime, records: list[dict], paths: list[str],
          access, blocked: list[set[str]]) -> None:
    by_hop: dict[str, list[str]] = {}
    for path in paths:
        head, _, rest = path.partition(".")
        by_hop.setdefault(head, []).append(rest)
    for head, rests in by_hop.items():
        target = runtime.entities[er.entity.field(head).target]
        wanted = frozenset(rest.partition(".")[0] for rest in rests)
        found = _targets(conn, target, {r[head] for r in records if r.get(head) is not None}, access, wanted)
        deeper = [rest for rest in rests if "." in rest]
        inner_blocked: dict[int, set[str]] = {}
        if deeper:
            rows = list(found.values())
            sub = [set() for _ in rows]
            _fill(runtime, conn, target, [rec for rec, _ in rows], deeper, access, sub)
            inner_blocked = {id(rec): b for (rec, _), b in zip(rows, sub)}
        for record, out in zip(records, blocked):
            hit = found.get(record.get(head))
            for rest in rests:
                record[f"{head}.{rest}"] = None if hit is None else hit[0].get(rest)
            if hit is None:
                continue
            if not hit[1]:
                out.update(f"{head}.{rest}" for rest in rests)
            else:
                out.update(f"{head}.{rest}" for rest in inner_blocked.get(id(hit[0]), ()))


def _targets(conn: sa.Connection, er: EntityRuntime, ids: set, access,
             names: frozenset[str]) -> dict[str, tuple[dict, bool]]:
    """id → (the ``names`` of the record, whether the caller may read it), for the records of ``er``
    with these ids. Only the columns of ``names`` are read, unless one is a formula (then the row)."""
    if not ids:
        return {}
    plan = _plan(er, names)
    statement = _statement(er, names, plan, access)
    out = {}
    for row in conn.execute(statement, {"crm_ids": sorted(ids)}).mappings():
        if plan is None:
            record = er.from_row(row)
            if er.paths:
                er.compute(record)  # a path ends only at formulas that read no other record
        else:
            record = {name: row[name] if kind is None else kind.from_row(f, row) for name, f, kind in plan}
        out[record["id"]] = (record, bool(row[READABLE]))
    return out


def _plan(er: EntityRuntime, names: frozenset[str]):
    """(name, field, type or None) to read ``names`` (and the id) from their own columns; None if a
    name is computed (a formula), which needs the whole row."""
    key = ("plan", names)
    if key not in er.statement_cache:
        wanted = names | {"id"}
        plan = [entry for entry in er.row_plan if entry[0] in wanted]
        er.statement_cache[key] = tuple(plan) if len(plan) == len(wanted) else None
    return er.statement_cache[key]


def _statement(er: EntityRuntime, names: frozenset[str], plan, access) -> sa.Select:
    """``SELECT <columns>, <caller may read> FROM <entity> WHERE id IN :crm_ids``, built once per
    columns and caller (the clause key of :meth:`Access.clause_key`)."""
    key = ("select", names, access.clause_key(er, "read"))
    statement = er.statement_cache.get(key)
    if statement is None:
        if len(er.statement_cache) >= 4096:
            er.statement_cache.clear()
        if plan is None:
            columns = list(er.table.c)
        else:
            columns = [c for name, f, kind in plan for c in (kind.columns(f) if kind is not None else [er.table.c[name]])]
            columns = [er.table.c[c.name] for c in columns]
        readable = access.clause(er, "read")
        statement = sa.select(*columns, sa.case((readable, True), else_=False).label(READABLE)) \
            .where(er.table.c.id.in_(sa.bindparam("crm_ids", expanding=True)))
        er.statement_cache[key] = statement
    return statement


class Joined:
    """The one-reference paths of a list page read in the page's own query: ``LEFT JOIN`` the
    referenced table (aliased) on the reference, select the columns the paths end at and the caller's
    read predicate over the alias. No extra round trip; longer paths are resolved afterwards."""

    def __init__(self, runtime: Runtime, er: EntityRuntime, access):
        self.joins, self.columns, self.reads, self.paths = [], [], [], set()
        heads: dict[str, list[str]] = {}
        for path in sorted(er.paths):
            head, _, rest = path.partition(".")
            if "." not in rest:
                heads.setdefault(head, []).append(rest)
        for n, (head, names) in enumerate(sorted(heads.items())):
            target = runtime.entities[er.entity.field(head).target]
            plan = _plan(target, frozenset(names))
            if plan is None:
                continue  # a path to a formula: resolved from the whole row afterwards
            alias = target.table.alias(f"crm_j{n}")
            readable = sql_util.ClauseAdapter(alias).traverse(access.clause(target, "read"))
            flag = f"crm_j{n}_readable"
            self.joins.append((alias, alias.c.id == er.table.c[head]))
            self.columns.append(sa.case((readable, True), else_=False).label(flag))
            fields = []
            for name, f, kind in plan:
                if name == "id":
                    continue
                labels = {}
                for column in (kind.columns(f) if kind is not None else [alias.c[name]]):
                    label = f"crm_j{n}_{column.name}"
                    self.columns.append(alias.c[column.name].label(label))
                    labels[column.name] = label
                fields.append((f"{head}.{name}", name, f, kind, labels))
                self.paths.add(f"{head}.{name}")
            self.reads.append((head, flag, fields))

    def page(self, statement: sa.Select, order: list) -> sa.Select:
        """The page ``statement`` (filtered, ordered, limited, offset), then joined: ``SELECT page.*,
        <joined columns> FROM (<statement>) AS page LEFT JOIN ... ORDER BY <order>`` — the joins run
        for the page's rows only, never for the rows an offset skips."""
        page = statement.subquery("crm_page")
        adapt = sql_util.ClauseAdapter(page)
        source = page
        for alias, on in self.joins:
            source = source.outerjoin(alias, adapt.traverse(on))
        return sa.select(page, *self.columns).select_from(source).order_by(*(adapt.traverse(o) for o in order))

    def read(self, row, record: dict) -> set[str]:
        """Put the joined paths into ``record``; answer those the caller may not read."""
        blocked = set()
        for head, flag, fields in self.reads:
            for path, name, f, kind, labels in fields:
                if kind is None:
                    record[path] = row[labels[name]]
                else:
                    record[path] = kind.from_row(f, {column: row[label] for column, label in labels.items()})
            if record.get(head) is not None and not row[flag]:
                blocked.update(path for path, *_ in fields)
        return blocked


def joined(runtime: Runtime, er: EntityRuntime, access) -> Joined:
    """The :class:`Joined` for this entity and caller (built once per clause key)."""
    key = ("joined", access.clause_key(er, "read"),
           tuple(access.clause_key(runtime.entities[er.entity.field(p.partition(".")[0]).target], "read")
                 for p in sorted(er.paths)))
    found = er.statement_cache.get(key)
    if found is None:
        found = er.statement_cache[key] = Joined(runtime, er, access)
    return found
