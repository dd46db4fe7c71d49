"""The contract every field type implements, the error its checks raise, and the list filters.

A field type is one object that knows everything about its values: the column(s) that store them,
the strict check a written value passes, the row ↔ Python ↔ JSON conversions, the list filters it
answers (a literal map of operator name → :class:`Operator`, the way jsonschema maps keywords to
functions), the JSON Schema of its values for the API document, and what a migration does with its
stored values. The types themselves live beside it (``fieldtypes.py``, ``numbers.py``) and are
registered in one literal dict, :data:`crm_platform.engine.fieldtypes.TYPES`; the record service,
lists, migrations, the OpenAPI document and the entity description ask them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from crm_platform.metadata.model import FieldDef

Check = Callable[[Any], Any]


class Invalid(Exception):
    """A value failed a check; carries a message key and its parameters."""

    def __init__(self, key: str, **params):
        self.key, self.params = key, params


# -- JSON Schema fragments the types' documents are made of (plain dicts: no web code here) -------
STRING, INTEGER, NUMBER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
DATE, DATETIME = {"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}
ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,36}$"}  # what an id field accepts (ours are UUIDs)


# -- list filters: ``filter[<field>][<op>]=<text>`` ------------------------------------------------
#: Values one ``in`` filter may list (bounded SQL, bounded parameters).
MAX_IN_VALUES = 500


@dataclass(frozen=True)
class Operator:
    """One list filter: the SQL comparing a column with the filter's text (read by the field's type),
    and the JSON Schema of that text for the API document."""

    sql: Callable[[FieldType, FieldDef | None, sa.Column, str], Any]
    schema: Callable[[FieldType, FieldDef | None], dict]


def parse_flag(text: str) -> bool:
    """A yes/no in a query string: true/1/yes or false/0/no, in any case."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise Invalid("type", expected="boolean")


def _is_null(kind, f, column, text):
    return column.is_(None) if parse_flag(text) else column.is_not(None)


def _one_of(kind, f, column, text):
    parts = text.split(",")
    if len(parts) > MAX_IN_VALUES:
        raise Invalid("filter_values", max=MAX_IN_VALUES)
    values = [kind.parse_query(f, part) for part in parts]
    if None in values:
        raise Invalid("filter_value")
    return column.in_(values)


def _comparison(compare: Callable) -> Operator:
    """A comparison with one value of the field's type. Nothing (a blank text) only makes sense to
    ``eq``/``ne``, which render it as IS NULL / IS NOT NULL."""
    def sql(kind, f, column, text):
        value = kind.parse_query(f, text)
        if value is None and compare not in (operator.eq, operator.ne):
            raise Invalid("filter_value")
        return compare(column, value)
    return Operator(sql, lambda kind, f: kind.query_schema(f))


# ``contains``/``startswith``: case-insensitive, on the stored text. The filter's text is not a value
# of the field (``filter[email][contains]=@acme`` is no address), so the type does not check it.
def _contains(kind, f, column, text):
    return sa.func.lower(column).contains(text.lower(), autoescape=True)


def _startswith(kind, f, column, text):
    return sa.func.lower(column).startswith(text.lower(), autoescape=True)


IS_NULL = Operator(_is_null, lambda kind, f: dict(BOOLEAN))
ONE_OF = Operator(_one_of, lambda kind, f: {"type": "string",
                                            "description": f"comma-separated values (at most {MAX_IN_VALUES})"})
EQ, NE = _comparison(operator.eq), _comparison(operator.ne)
#: What a type whose values only equal or differ answers (booleans: ordering them means nothing).
EQUALITY = MappingProxyType({"eq": EQ, "ne": NE, "in": ONE_OF, "isnull": IS_NULL})
#: What a type with ordered values answers (numbers, dates).
ORDERED = MappingProxyType({"eq": EQ, "ne": NE, "lt": _comparison(operator.lt), "lte": _comparison(operator.le),
                            "gt": _comparison(operator.gt), "gte": _comparison(operator.ge), "in": ONE_OF,
                            "isnull": IS_NULL})
#: What a type stored as text answers: ordered, and searched by substring or prefix.
TEXTUAL = MappingProxyType({**{k: v for k, v in ORDERED.items() if k != "isnull"},
                            "contains": Operator(_contains, lambda kind, f: dict(STRING)),
                            "startswith": Operator(_startswith, lambda kind, f: dict(STRING)), "isnull": IS_NULL})
#: Every operator a filter may name, in the order the API documents them.
OPERATORS = tuple(TEXTUAL)
#: Nothing: a type whose values no filter can compare (not stored, or not in one column).
UNFILTERABLE = MappingProxyType({})


class FieldType:
    """Base: one nullable column named after the field, JSON values stored as they are."""

    stored = True
    sortable = True
    expected = "value"
    #: The list filters it answers, by operator name (:class:`Operator`).
    operators: MappingProxyType[str, Operator] = ORDERED
    #: JSON Schema of a value of this type computed by a formula (``result_type``); None: not a result type.
    result_schema: dict | None = None

    # -- storage -----------------------------------------------------------------------------------
    def column_type(self, f: FieldDef) -> sa.types.TypeEngine:
        raise NotImplementedError

    def columns(self, f: FieldDef) -> list[sa.Column]:
        return [sa.Column(f.name, self.column_type(f), nullable=True, info={"field": f})]

    # -- values ------------------------------------------------------------------------------------
    def check(self, f: FieldDef) -> Check:
        """A function that returns the Python value for a JSON input or raises Invalid."""
        raise NotImplementedError

    def from_row(self, f: FieldDef, row) -> Any:
        return row[f.name]

    def to_row(self, f: FieldDef, value) -> dict[str, Any]:
        return {f.name: value}

    def to_json(self, value):
        return value

    # -- lists -------------------------------------------------------------------------------------
    def parse_query(self, f: FieldDef, text: str):
        return self.check(f)(text)

    def filter(self, f: FieldDef | None, column: sa.Column, op: str, text: str):
        """SQL for ``filter[<column>][<op>]=<text>``; Invalid if the type has no such filter or the
        text is not what it compares with."""
        found = self.operators.get(op)
        if found is None:
            raise Invalid("filter_op", op=op)
        return found.sql(self, f, column, text)

    # -- the API document (JSON Schema, without null: the document adds it) ----------------------
    def schema(self, f: FieldDef) -> dict:
        """A value of the field as the API returns it."""
        raise NotImplementedError

    def input_schema(self, f: FieldDef) -> dict:
        """A value of the field as the API accepts it (where that is more than it returns)."""
        return self.schema(f)

    def query_schema(self, f: FieldDef | None) -> dict:
        """The text :meth:`parse_query` reads, as the JSON value it stands for."""
        return {k: v for k, v in self.input_schema(f).items() if k != "description"}

    def api_note(self, f: FieldDef) -> str:
        """Words after the field's label in the API document (what an id names, for instance)."""
        return ""

    # -- migrations --------------------------------------------------------------------------------
    def convert(self, f: FieldDef, value):
        """The value of this type that ``value``, stored under the column's previous type, becomes
        when the field's type changes (a migration's ``change_type``); raises Invalid if it has none.
        Text longer than the field's ``max_length`` has none, whatever the type reads it as."""
        converted = self.parse_query(f, value if type(value) is str else str(value))
        if isinstance(converted, str) and f.max_length and len(converted) > f.max_length:
            raise Invalid("max_length", max=f.max_length)
        return converted

    def stale_values(self, conn: sa.Connection, table_name: str, column: sa.Column, stored_as: str) -> str | None:
        """Why values stored in column ``stored_as`` must be rewritten before ``column`` reads them
        right (a migration's ``rewrite_values`` step), or None: nothing to rewrite."""
        return None

    def rewrite_values(self, conn: sa.Connection, table: sa.Table, column: sa.Column) -> None:
        """Rewrite what :meth:`stale_values` found."""
        raise NotImplementedError
