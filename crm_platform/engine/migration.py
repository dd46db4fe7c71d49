"""Schema change: compare the runtime's tables with the database and plan what to do.

A plan is a list of :class:`Step` s shown before anything is applied: create tables, add columns,
rename columns (``renamed_from`` keeps the data), change column types (with a count of the values
that would not convert), add or drop indexes, and on SQLite re-encode stored amounts that are not
exact keys of their column's places (``rewrite_values``: REALs written before exact storage sort
before every key, so lists are wrong until they are rewritten; the step is pending, like the others).
Columns and tables the definitions no longer have are *archived* — kept with their data — and
dropped only when explicitly asked. Alembic's operations do the DDL, in one transaction where the
database allows it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from . import decimals
from .fieldtypes import TYPES, Invalid
from .runtime import Runtime

SAFE = ("create_table", "add_column", "rename_column", "add_index", "drop_index", "change_type", "rewrite_values")


@dataclass(frozen=True)
class Step:
    # create_table | add_column | rename_column | change_type | rewrite_values | add_index | drop_index
    # | archive_column | archive_table
    kind: str
    table: str
    name: str = ""
    detail: str = ""
    blocked: str | None = None  # why this step will not be applied (e.g. values that would not convert)

    def __str__(self) -> str:
        text = f"{self.kind:<15} {self.table}{'.' + self.name if self.name else ''}"
        text += f"  ({self.detail})" if self.detail else ""
        return text + (f"  BLOCKED: {self.blocked}" if self.blocked else "")


def _type_sql(column_type, dialect) -> str:
    return column_type.compile(dialect=dialect).upper().replace(" ", "")


def plan(runtime: Runtime, db: sa.Engine) -> list[Step]:
    steps: list[Step] = []
    with db.connect() as conn:
        inspector = sa.inspect(conn)
        existing = set(inspector.get_table_names())
        for table in runtime.metadata.sorted_tables:
            if table.name not in existing:
                steps.append(Step("create_table", table.name, detail=f"{len(table.c)} columns"))
                continue
            steps += _column_steps(runtime, conn, inspector, table)
            steps += _index_steps(inspector, table)
        for name in sorted(existing - set(runtime.metadata.tables)):
            if not name.startswith(("alembic", "sqlite_")):
                steps.append(Step("archive_table", name, detail="no longer defined; kept with its data"))
    return steps


def _renames(runtime: Runtime, table: sa.Table) -> dict[str, str]:
    """New column name → old column name, from the fields' ``renamed_from``: each column the field's
    type stores it in, paired with the one it stored the field under its old name."""
    entity = runtime.catalog.entities.get(table.name)
    renames = {}
    for f in entity.fields if entity else ():
        if f.renamed_from:
            kind = TYPES[f.type]
            new, old = kind.columns(f), kind.columns(replace(f, name=f.renamed_from))
            renames |= {n.name: o.name for n, o in zip(new, old, strict=True)}
    return renames


def _column_steps(runtime, conn, inspector, table: sa.Table) -> list[Step]:
    steps = []
    actual = {c["name"]: c for c in inspector.get_columns(table.name)}
    renames = _renames(runtime, table)
    claimed, rewrites = set(), []
    for column in table.columns:
        if column.name in actual:
            reflected = actual[column.name]
            if _type_sql(reflected["type"], conn.dialect) != _type_sql(column.type, conn.dialect):
                bad = _unconvertible(conn, table, column, reflected["type"])
                detail = f"{_type_sql(reflected['type'], conn.dialect)} → {_type_sql(column.type, conn.dialect)}"
                steps.append(Step("change_type", table.name, column.name, detail,
                                  f"{bad} value(s) would not convert" if bad else None))
            else:
                rewrites += _rewrite_steps(conn, table, column, column.name)
        elif renames.get(column.name) in actual:
            claimed.add(renames[column.name])
            steps.append(Step("rename_column", table.name, column.name, f"from {renames[column.name]}; data kept"))
            rewrites += _rewrite_steps(conn, table, column, renames[column.name])
        else:
            steps.append(Step("add_column", table.name, column.name, _type_sql(column.type, conn.dialect)))
    for name in actual:
        if name not in table.c and name not in claimed:
            steps.append(Step("archive_column", table.name, name, "no longer defined; kept with its data"))
    return steps + rewrites  # after the renames they may need


def _rewrite_steps(conn, table: sa.Table, column: sa.Column, stored_as: str) -> list[Step]:
    """A ``rewrite_values`` step if the field's type finds stored values its column would read wrongly
    (amounts on SQLite that are not keys of the column's places: ``decimals.py``)."""
    f = column.info.get("field")
    detail = TYPES[f.type].stale_values(conn, table.name, column, stored_as) if f is not None else None
    return [Step("rewrite_values", table.name, column.name, detail)] if detail else []


def _unconvertible(conn, table: sa.Table, column: sa.Column, old_type) -> int:
    """How many stored values the column's new type would reject."""
    f = column.info.get("field")
    if f is None:
        return 0
    bad = 0
    for _, value in _stored(conn, table.name, column.name):
        try:
            _converted(f, old_type, value)
        except Invalid:
            bad += 1
    return bad


def _stored(conn, table_name: str, name: str):
    """(id, raw value) of every non-null value of an entity table's column, read untyped."""
    value = sa.column(name)
    query = sa.select(sa.column("id"), value).select_from(sa.table(table_name)).where(value.is_not(None))
    return conn.execute(query.execution_options(yield_per=1000))


def _converted(f, old_type, value):
    """The new type's value for a raw stored ``value`` of the column's ``old_type``, or Invalid.
    An amount column's raw value is decoded first: on SQLite it is a text key (or a REAL from before
    exact storage), which no parser of numerals reads."""
    if isinstance(old_type, sa.Numeric) and not isinstance(old_type, sa.Float):
        try:
            value = decimals.from_stored(value)
        except ValueError:
            raise Invalid("type", expected="number") from None
    return TYPES[f.type].convert(f, value)


def _carried(conn, table: sa.Table, column: sa.Column) -> list[dict]:
    """SQLite, before a type change: the column's values converted to the new type, after which the
    column is emptied. Alembic's table rebuild copies values with ``CAST``, which turns an amount key
    into 0 and a long numeral into a 15-digit REAL; so the values travel through Python instead and
    are written back through the new column type (:func:`_apply_step`)."""
    f = column.info.get("field")
    if conn.dialect.name != "sqlite" or f is None:
        return []
    old_type = next(c["type"] for c in sa.inspect(conn).get_columns(table.name) if c["name"] == column.name)
    carried = [{"_id": id_, "_value": _converted(f, old_type, value)}
               for id_, value in _stored(conn, table.name, column.name)]
    conn.execute(sa.table(table.name, sa.column(column.name)).update().values({column.name: None}))
    return carried


def _index_steps(inspector, table: sa.Table) -> list[Step]:
    actual = {i["name"] for i in inspector.get_indexes(table.name)}
    wanted = {i.name for i in table.indexes}
    steps = [Step("add_index", table.name, name) for name in sorted(wanted - actual)]
    steps += [Step("drop_index", table.name, name, "no longer needed (an index holds no data)")
              for name in sorted(actual - wanted) if name.startswith(("ix_", "ux_"))]
    return steps


def apply(runtime: Runtime, db: sa.Engine, steps: list[Step], drop_archived: bool = False) -> list[Step]:
    """Apply the plan's safe, unblocked steps (and archived drops only if asked). Returns what ran."""
    done = []
    with db.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        for step in steps:
            if step.blocked or (step.kind not in SAFE and not (drop_archived and step.kind.startswith("archive"))):
                continue
            _apply_step(runtime, conn, op, step)
            done.append(step)
    return done


def _apply_step(runtime: Runtime, conn, op: Operations, step: Step) -> None:
    table = runtime.metadata.tables.get(step.table)
    if step.kind == "create_table":
        table.create(conn)
    elif step.kind == "add_column":
        column = table.c[step.name]
        op.add_column(step.table, sa.Column(column.name, column.type, nullable=True))
    elif step.kind == "rename_column":
        old = _renames(runtime, table)[step.name]
        op.alter_column(step.table, old, new_column_name=step.name)
    elif step.kind == "change_type":
        column = table.c[step.name]
        carried = _carried(conn, table, column)
        with op.batch_alter_table(step.table) as batch:
            using = f"{step.name}::{column.type.compile(dialect=conn.dialect)}"
            batch.alter_column(step.name, type_=column.type, postgresql_using=using)
        if carried:
            write = table.update().where(table.c.id == sa.bindparam("_id"))
            conn.execute(write.values({column.name: sa.bindparam("_value", type_=column.type)}), carried)
    elif step.kind == "rewrite_values":
        column = table.c[step.name]
        TYPES[column.info["field"].type].rewrite_values(conn, table, column)
    elif step.kind == "add_index":
        index = next(i for i in table.indexes if i.name == step.name)
        index.create(conn)
    elif step.kind == "drop_index":
        op.drop_index(step.name, table_name=step.table)
    elif step.kind == "archive_column":
        with op.batch_alter_table(step.table) as batch:
            batch.drop_column(step.name)
    elif step.kind == "archive_table":
        op.drop_table(step.table)


def pending(steps: list[Step]) -> list[Step]:
    """Steps the running code needs before it can serve (archived leftovers and unneeded indexes do not
    count; ``rewrite_values`` does: until it runs, lists sort and filter those amounts wrongly)."""
    return [s for s in steps if not s.kind.startswith("archive") and s.kind != "drop_index"]
