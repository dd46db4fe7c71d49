"""List queries: filters, search, sort and pagination, all rendered to SQL.

Keyset pagination (``cursor``) keeps every page as fast as the first: the cursor holds the last
row's sort values and id, and the next page starts after them in index order. Offset paging
(``page``) is offered for UIs that jump to page N and costs more the deeper it goes.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa

from .errors import BadRequest
from .fieldtypes import INT64_MAX, INT64_MIN, TYPES, Invalid
from .messages import Message
from .runtime import EntityRuntime

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
#: Values one ``in`` filter may list, and filters one list may combine (bounded SQL, bounded parameters).
MAX_IN_VALUES, MAX_FILTERS = 500, 50
#: Offset paging goes this deep at most (deeper pages: use the cursor, which is as fast at any depth).
MAX_PAGE = 100_000
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "startswith", "isnull")
_COMPARISONS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lte": operator.le,
                "gt": operator.gt, "gte": operator.ge}
_SYSTEM_TYPES = {"created_at": "datetime", "updated_at": "datetime", "version": "integer"}


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


def _parse_value(er: EntityRuntime, name: str, text: str):
    entity = er.entity
    if entity.has_field(name):
        f = entity.field(name)
        return TYPES[f.type].parse_query(f, text)
    kind = _SYSTEM_TYPES.get(name)
    value = TYPES[kind].parse_query(None, text) if kind else text
    if name == "version" and not 0 <= value < 2 ** 31:  # a 32-bit column: nothing outside can match
        raise Invalid("type", expected="integer")
    return value


def filter_clause(er: EntityRuntime, flt: Filter, hidden: frozenset[str] = frozenset()):
    """SQL for one filter. A hidden field is reported exactly like one that does not exist."""
    name, op = flt.field, flt.op
    known = _queryable(er, name, hidden)
    if not known or op not in OPERATORS:
        detail = Message("unknown_operator", {"op": op, "operators": ", ".join(OPERATORS)}) if known \
            else Message("no_such_field")
        raise BadRequest("bad_filter", field=name, detail=detail)
    column = er.table.c[name]
    kind = er.entity.field(name).type if er.entity.has_field(name) else None
    try:
        if op == "isnull":
            wanted = TYPES["boolean"].parse_query(None, flt.value)
            return column.is_(None) if wanted else column.is_not(None)
        if kind == "multiselect":
            if op != "contains":
                raise Invalid("filter_op", op=op)
            value = _parse_value(er, name, flt.value)
            return sa.cast(column, sa.Text).contains(json.dumps(value), autoescape=True)
        if op == "in":
            parts = flt.value.split(",")
            if len(parts) > MAX_IN_VALUES:
                raise Invalid("filter_values", max=MAX_IN_VALUES)
            values = [_parse_value(er, name, part) for part in parts]
            if None in values:
                raise Invalid("filter_value")
            return column.in_(values)
        if op in ("contains", "startswith", "lt", "lte", "gt", "gte") and not _supports(column, op):
            raise Invalid("filter_op", op=op)
        if op in ("contains", "startswith"):
            needle = flt.value.lower()
            lowered = sa.func.lower(column)
            return lowered.contains(needle, autoescape=True) if op == "contains" else lowered.startswith(needle, autoescape=True)
        value = _parse_value(er, name, flt.value)
        if value is None and op not in ("eq", "ne"):  # eq/ne with nothing: IS NULL / IS NOT NULL
            raise Invalid("filter_value")
    except Invalid as exc:
        raise BadRequest("bad_filter", field=name, detail=Message(exc.key, exc.params)) from None
    return _COMPARISONS[op](column, value)


def _queryable(er: EntityRuntime, name: str, hidden: frozenset[str]) -> bool:
    """A field or system column a list may filter or sort on: not a storage detail (a geo field's
    ``_lat``/``_lon`` columns), not a formula (not stored), not hidden from the caller."""
    return name in er.columns and name in er.table.c and name not in hidden


def _supports(column: sa.Column, op: str) -> bool:
    if op in ("contains", "startswith"):
        return isinstance(column.type, sa.String)  # Text and the text-like types
    return not isinstance(column.type, sa.Boolean)  # ordering a boolean means nothing (and fails in SQL)


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
        sortable = _queryable(er, name, hidden) and \
            (not er.entity.has_field(name) or TYPES[er.entity.field(name).type].sortable)
        if not sortable:
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
