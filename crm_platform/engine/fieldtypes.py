"""The field-type registry: one object per contract type name, built into one literal dict.

Each type knows its storage columns, how to compile a strict check for one field (run once per
entity at compile time, called per value), how to turn a stored row into a Python value and a
Python value into JSON, the list filters it answers, the JSON Schema of its values, and how a
migration converts stored values to it (the contract: ``fieldtype.py``). The numeric types live in
``numbers.py``; every type is registered here, in ``TYPES``: a new type is a class and an entry.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from urllib.parse import urlsplit

import sqlalchemy as sa

from .columns import UTCDateTime
from .decimals import EXACT
from .fieldtype import (
    BOOLEAN,
    DATE,
    DATETIME,
    EQUALITY,
    ID,
    IS_NULL,
    STRING,
    TEXTUAL,
    UNFILTERABLE,
    Check,
    FieldType,
    Invalid,
    Operator,
    parse_flag,
)
from .numbers import INT64_MAX, INT64_MIN, NUMERIC_DIGITS, Integer, Number

__all__ = ["INT64_MAX", "INT64_MIN", "NUMERIC_DIGITS", "TYPES", "Check", "FieldType", "Invalid"]


class Text(FieldType):
    expected = "text"
    default_length = 255
    pattern: re.Pattern | None = None
    invalid_key = "pattern"
    operators = TEXTUAL
    result_schema = STRING

    def column_type(self, f):
        return sa.String(f.max_length or self.default_length)

    def schema(self, f):
        schema = {"type": "string", "maxLength": f.max_length or self.default_length}
        if f.pattern:
            schema["pattern"] = f"^(?:{f.pattern})$"  # the check full-matches
        return schema

    def normalize(self, value: str) -> str:
        return value.strip()

    def check(self, f):
        limit = f.max_length or self.default_length
        own, user = self.pattern, re.compile(f.pattern) if f.pattern else None
        normalize, invalid_key, expected = self.normalize, self.invalid_key, self.expected

        def check(value):
            if value is None:
                return None
            if type(value) is not str:
                raise Invalid("type", expected=expected)
            value = normalize(value)
            if not value:
                return None
            if "\x00" in value:
                raise Invalid("type", expected="text_without_nul")
            if len(value) > limit:
                raise Invalid("max_length", max=limit)
            if own is not None and not own.fullmatch(value):
                raise Invalid(invalid_key)
            if user is not None and not user.fullmatch(value):
                raise Invalid("pattern")
            return value
        return check


class TextArea(Text):
    default_length = 65535

    def column_type(self, f):
        return sa.Text()

    def normalize(self, value):
        return value if value.strip() else ""


class Email(Text):
    default_length = 254
    pattern = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
    invalid_key = "email"


class Phone(Text):
    default_length = 32
    pattern = re.compile(r"\+?[0-9]{3,20}(?:ext[0-9]{1,6})?")
    invalid_key = "phone"
    _noise = re.compile(r"[\s().\-]")

    def normalize(self, value):
        return self._noise.sub("", value)


class Url(Text):
    default_length = 2048
    invalid_key = "url"

    def check(self, f):
        base = super().check(f)

        def check(value):
            value = base(value)
            if value is not None:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
                    raise Invalid("url")
            return value
        return check


class Boolean(FieldType):
    expected = "boolean"
    operators = EQUALITY
    result_schema = BOOLEAN

    def column_type(self, f):
        return sa.Boolean()

    def schema(self, f):
        return dict(BOOLEAN)

    def check(self, f):
        def check(value):
            if value is None or type(value) is bool:
                return value
            raise Invalid("type", expected="boolean")
        return check

    def parse_query(self, f, text):
        return parse_flag(text)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Date(FieldType):
    result_schema = DATE

    def column_type(self, f):
        return sa.Date()

    def schema(self, f):
        return dict(DATE)

    def check(self, f):
        def check(value):
            if value is None or value == "":
                return None
            if type(value) is not str or not _ISO_DATE.fullmatch(value):
                raise Invalid("date")
            try:
                parsed = date.fromisoformat(value)
            except ValueError:
                raise Invalid("date") from None
            return parsed
        return check

    def to_json(self, value):
        return None if value is None else value.isoformat()


class DateTime(FieldType):
    result_schema = DATETIME

    def column_type(self, f):
        return UTCDateTime()

    def schema(self, f):
        return dict(DATETIME)

    def check(self, f):
        def check(value):
            if value is None or value == "":
                return None
            if type(value) is not str or not value.isascii() or "\x00" in value:
                raise Invalid("datetime")  # fromisoformat stops reading at a NUL
            try:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("no UTC offset")
                return parsed.astimezone(UTC)
            except (ValueError, OverflowError):  # Overflow: the UTC value falls outside years 1-9999
                raise Invalid("datetime") from None
        return check

    def to_json(self, value):
        return None if value is None else value.astimezone(UTC).isoformat()


class Select(FieldType):
    operators = TEXTUAL

    def column_type(self, f):
        return sa.String(64)

    def schema(self, f):
        return {"type": "string", "enum": [c.value for c in f.choices]}

    def check(self, f):
        allowed = f.choice_values()
        listed = ", ".join(c.value for c in f.choices)

        def check(value):
            if value is None or value == "":
                return None
            if type(value) is not str or value not in allowed:
                raise Invalid("choice", value=value, choices=listed)
            return value
        return check


def _has_choice(kind, f, column, text):
    """A multiselect holds the choice: its JSON list has the choice's JSON string in it."""
    return sa.cast(column, sa.Text).contains(json.dumps(kind.parse_query(f, text)), autoescape=True)


class MultiSelect(FieldType):
    sortable = False
    operators = MappingProxyType({"contains": Operator(_has_choice, lambda kind, f: kind.query_schema(f)),
                                  "isnull": IS_NULL})

    def column_type(self, f):
        return sa.JSON()

    def schema(self, f):
        return {**self.input_schema(f), "minItems": 1, "uniqueItems": True}

    def input_schema(self, f):
        return {"type": "array", "items": SELECT.schema(f)}

    def query_schema(self, f):
        return SELECT.schema(f)

    def check(self, f):
        one = SELECT.check(f)

        def check(value):
            if value is None:
                return None
            if type(value) is not list:
                raise Invalid("type", expected="choice_list")
            chosen = [one(v) for v in value]
            return list(dict.fromkeys(v for v in chosen if v is not None)) or None
        return check

    def parse_query(self, f, text):
        """A filter names one choice (``filter[tags][contains]=vip``)."""
        return SELECT.check(f)(text)


#: What an id may look like: ours are UUIDs; anything else cannot name a row (and may not reach SQL).
_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")


class Identifier(FieldType):
    """reference, user, file: the id of another row (existence is checked by the record service)."""

    operators = TEXTUAL

    def column_type(self, f):
        return sa.String(36)

    def schema(self, f):
        return dict(ID)

    def api_note(self, f):
        return f" (id of a {f.target or f.type})"

    def check(self, f):
        def check(value):
            if value is None or value == "":
                return None
            if type(value) is not str or not _ID.fullmatch(value):
                raise Invalid("type", expected="id")
            return value
        return check


class AutoNumber(Text):
    default_length = 64


class Formula(FieldType):
    """Computed on read from other fields; nothing stored."""

    stored = False
    sortable = False
    operators = UNFILTERABLE

    def columns(self, f):
        return []

    def check(self, f):
        raise AssertionError("formula fields are read-only")

    def schema(self, f):
        """The JSON of its ``result_type``'s computed values (the default: decimal)."""
        return dict(TYPES[f.result_type or "decimal"].result_schema)

    def from_row(self, f, row):
        return None

    def to_row(self, f, value):
        return {}

    def to_json(self, value, places: int | None = None):
        """JSON for a computed value. A Decimal stays exact; with ``places`` (a numeric
        ``result_type``) a number is shown at the field's places when that loses nothing
        (``500000.200000`` → ``500000.20``, ``250`` → ``250.00``), else with every digit it has."""
        if type(value) is int and places:
            value = Decimal(value)
        if isinstance(value, Decimal):
            if not value.is_finite():
                return None
            if places is not None and value.as_tuple().exponent != -places:
                try:
                    shown = value.quantize(Decimal(1).scaleb(-places), context=EXACT)
                except ArithmeticError:  # more digits than any amount (e.g. 1E+200): shown as it is
                    return value
                return shown if shown == value else value
            return value
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value


class Geo(FieldType):
    """Latitude/longitude in two float columns, ``<name>_lat`` and ``<name>_lon``."""

    sortable = False
    operators = UNFILTERABLE

    def columns(self, f):
        return [sa.Column(f"{f.name}_lat", sa.Double(), info={"field": f}),
                sa.Column(f"{f.name}_lon", sa.Double(), info={"field": f})]

    def schema(self, f):
        return {"type": "object", "required": ["lat", "lon"], "additionalProperties": False,
                "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                               "lon": {"type": "number", "minimum": -180, "maximum": 180}}}

    def check(self, f):
        def coordinate(value, low, high):
            kind = type(value)
            if kind is Decimal:  # what the JSON parser gives for 31.2304; the columns are doubles
                if not value.is_finite() or not low <= value <= high:
                    raise Invalid("type", expected="geo")
                return float(value)
            if kind not in (int, float) or not math.isfinite(value) or not low <= value <= high:
                raise Invalid("type", expected="geo")
            return float(value)

        def check(value):
            if value is None:
                return None
            if type(value) is not dict or set(value) != {"lat", "lon"}:
                raise Invalid("type", expected="geo")
            return {"lat": coordinate(value["lat"], -90, 90), "lon": coordinate(value["lon"], -180, 180)}
        return check

    def from_row(self, f, row):
        lat = row[f"{f.name}_lat"]
        return None if lat is None else {"lat": lat, "lon": row[f"{f.name}_lon"]}

    def to_row(self, f, value):
        return {f"{f.name}_lat": value and value["lat"], f"{f.name}_lon": value and value["lon"]}

    def parse_query(self, f, text):
        raise Invalid("type", expected="filterable")


SELECT = Select()
TYPES: MappingProxyType[str, FieldType] = MappingProxyType({
    "text": Text(), "textarea": TextArea(), "email": Email(), "phone": Phone(), "url": Url(),
    "integer": Integer(), "decimal": Number(), "currency": Number(), "percent": Number(),
    "boolean": Boolean(), "date": Date(), "datetime": DateTime(), "select": SELECT,
    "multiselect": MultiSelect(), "reference": Identifier(), "user": Identifier(), "file": Identifier(),
    "formula": Formula(), "autonumber": AutoNumber(), "geo": Geo(),
})
