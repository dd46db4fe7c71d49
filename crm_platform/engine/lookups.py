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
        found = _targets(conn, target, {r[head] for r in records if r.get(head) is not None}, access)
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


def _targets(conn: sa.Connection, er: EntityRuntime, ids: set, access) -> dict[str, tuple[dict, bool]]:
    """id → (record, whether the caller may read it), for the records of ``er`` with these ids."""
    if not ids:
        return {}
    readable = access.clause(er, "read")
    statement = sa.select(er.table, sa.case((readable, True), else_=False).label(READABLE)) \
        .where(er.table.c.id.in_(sorted(ids)))
    out = {}
    for row in conn.execute(statement).mappings():
        record = er.from_row(row)
        if er.paths:
            er.compute(record)  # a path ends only at formulas that read no other record
        out[record["id"]] = (record, bool(row[READABLE]))
    return out
