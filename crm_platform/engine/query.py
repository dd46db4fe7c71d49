"""List queries: filters, search, sort and pagination, all rendered to SQL.

Keyset pagination (``cursor``) keeps every page as fast as the first: the cursor holds the last
row's sort values and id, and the next page starts after them in index order. Offset paging
(``page``) is offered for UIs that jump to page N and costs more the deeper it goes.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa

from crm_platform.metadata.model import EntityDef, FieldDef

from .errors import BadRequest
from .fieldtype import OPERATORS, FieldType
from .fieldtypes import INT64_MAX, INT64_MIN, TYPES, Invalid
from .messages import Message
from .runtime import EntityRuntime
from .system_fields import SYSTEM_FIELDS

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
#: Filters one list may combine (bounded SQL, bounded parameters; an ``in`` is bounded by its type).
MAX_FILTERS = 50
#: Offset paging goes this deep at most (deeper pages: use the cursor, which is as fast at any depth).
MAX_PAGE = 100_000


@dataclass
class Filter:
    field: str
    op: str
    value: str


@dataclass
class ListQuery:
    filters: list[Filter] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    search: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    page: int | None = None
    count: bool = False


def field_type(entity: EntityDef, name: str) -> tuple[FieldDef | None, FieldType]:
    """The field a list names (None for a system column) and the type that reads its filters,
    answers its operators and says whether it sorts."""
    if entity.has_field(name):
        f = entity.field(name)
        return f, TYPES[f.type]
    return None, SYSTEM_FIELDS[name].query


def filter_clause(er: EntityRuntime, flt: Filter, hidden: frozenset[str] = frozenset()):
    """SQL for one filter, from the type of its column. A hidden field is reported exactly like one
    that does not exist."""
    name, op = flt.field, flt.op
    known = _queryable(er, name, hidden)
    if not known or op not in OPERATORS:
        detail = Message("unknown_operator", {"op": op, "operators": ", ".join(OPERATORS)}) if known \
            else Message("computed_field") if _computed(er, name, hidden) else Message("no_such_field")
        raise BadRequest("bad_filter", field=name, detail=detail)
    f, kind = field_type(er.entity, name)
    try:
        return kind.filter(f, er.table.c[name], op, flt.value)
    except Invalid as exc:
        raise BadRequest("bad_filter", field=name, detail=Message(exc.key, exc.params)) from None


def _computed(er: EntityRuntime, name: str, hidden: frozenset[str]) -> bool:
    """A visible field computed on read (a formula, a lookup): it exists, but has no column."""
    return name not in hidden and er.entity.has_field(name) and not er.entity.field(name).stored


def _queryable(er: EntityRuntime, name: str, hidden: frozenset[str]) -> bool:
    """A field or system column a list may filter or sort on: not a storage detail (a geo field's
    ``_lat``/``_lon`` columns), not a formula (not stored), not hidden from the caller."""
    return name in er.columns and name in er.table.c and name not in hidden


def search_clause(er: EntityRuntime, text: str, hidden: frozenset[str] = frozenset()):
    needle = text.strip().lower()
    columns = [er.table.c[name] for name in er.entity.search_fields if name in er.table.c and name not in hidden]
    if not columns or not needle:
        return sa.true()
    return sa.or_(*(sa.func.lower(c).contains(needle, autoescape=True) for c in columns))


def sort_keys(er: EntityRuntime, sort: list[str], hidden: frozenset[str] = frozenset()) -> list[tuple[str, bool]]:
    """(column, descending) pairs, ending with the id as the tie-breaker. Sorting on a hidden field
    would reveal its order, so it is refused like an unknown one."""
    keys = []
    for item in sort or list(er.entity.default_sort) or ["-created_at"]:
        name, desc = item.lstrip("-"), item.startswith("-")
        if not (_queryable(er, name, hidden) and field_type(er.entity, name)[1].sortable):
            raise BadRequest("bad_sort", field=name)
        if name != "id" and name not in (k for k, _ in keys):
            keys.append((name, desc))
    keys.append(("id", keys[-1][1] if keys else False))
    return keys


def order_by(er: EntityRuntime, keys):
    """ORDER BY for the keys. NULLS LAST only where a column can hold NULL: on NOT NULL columns
    (created_at, id, stage, ...) it would stop PostgreSQL from reading the order off an index."""
    clauses = []
    for name, desc in keys:
        column = er.table.c[name]
        clause = column.desc() if desc else column.asc()
        clauses.append(clause.nulls_last() if column.nullable else clause)
    return clauses


def _encode(value):
    if isinstance(value, datetime | date):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    return value


def encode_cursor(keys, row) -> str:
    payload = {"k": [f"{'-' if d else ''}{n}" for n, d in keys], "v": [_encode(row[n]) for n, _ in keys]}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def after_cursor(er: EntityRuntime, keys, cursor: str):
    """The predicate selecting rows strictly after the cursor's row in ``keys`` order (NULLs last)."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if payload["k"] != [f"{'-' if d else ''}{n}" for n, d in keys] or len(payload["v"]) != len(keys):
            raise ValueError
        values = [_decode(er.table.c[n], v) for (n, _), v in zip(keys, payload["v"], strict=True)]
    except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError, binascii.Error):
        raise BadRequest("bad_cursor") from None
    clauses, equal = [], []
    for (name, desc), value in zip(keys, values, strict=True):
        column = er.table.c[name]
        if value is None:
            after, same = sa.false(), column.is_(None)
        else:
            after = column < value if desc else column > value
            if column.nullable:  # NULLs sort last, so they come after every value
                after = sa.or_(after, column.is_(None))
            same = column == value
        clauses.append(sa.and_(*equal, after))
        equal.append(same)
    predicate = sa.or_(*clauses)
    first, desc = keys[0]
    column = er.table.c[first]
    if values[0] is not None and not column.nullable:
        # A redundant range bound on the leading key, so the database seeks in the index
        # instead of scanning from the start and filtering.
        predicate = sa.and_(column <= values[0] if desc else column >= values[0], predicate)
    return predicate


def _decode(column: sa.Column, value):
    """A cursor value as the Python value of its column, or ValueError: a cursor is client input,
    so each value must have exactly its column's type before it goes near SQL."""
    if value is None:
        if column.nullable:
            return None
        raise ValueError("null")
    kind = column.type.python_type
    if kind is str and type(value) is str and "\x00" not in value:
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError
        return value
    if kind is int and type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    if kind is bool and type(value) is bool:
        return value
    if kind in (Decimal, float) and type(value) is dict and type(value.get("d")) is str:
        number = Decimal(value["d"])
        if number.is_finite():
            return number
    if kind in (date, datetime) and type(value) is dict and type(value.get("t")) is str:
        if kind is date:
            return date.fromisoformat(value["t"])
        parsed = datetime.fromisoformat(value["t"])
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise ValueError(f"not a {kind.__name__}")
