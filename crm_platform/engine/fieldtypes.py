"""The field-type registry: one object per contract type name, built into one literal dict.

Each type knows its storage columns, how to compile a strict check for one field (run once per
entity at compile time, called per value), how to turn a stored row into a Python value and a
Python value into JSON, and how to read a filter value out of a query string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from crm_platform.metadata.model import FieldDef

from .columns import UTCDateTime

Check = Callable[[Any], Any]


class Invalid(Exception):
    """A value failed a check; carries a message key and its parameters."""

    def __init__(self, key: str, **params):
        self.key, self.params = key, params


class FieldType:
    """Base: one nullable column named after the field, JSON values stored as they are."""

    stored = True
    sortable = True
    expected = "a value"

    def column_type(self, f: FieldDef) -> sa.types.TypeEngine:
        raise NotImplementedError

    def columns(self, f: FieldDef) -> list[sa.Column]:
        return [sa.Column(f.name, self.column_type(f), nullable=True, info={"field": f})]

    def check(self, f: FieldDef) -> Check:
        """A function that returns the Python value for a JSON input or raises Invalid."""
        raise NotImplementedError

    def from_row(self, f: FieldDef, row) -> Any:
        return row[f.name]

    def to_row(self, f: FieldDef, value) -> dict[str, Any]:
        return {f.name: value}

    def to_json(self, value):
        return value

    def parse_query(self, f: FieldDef, text: str):
        return self.check(f)(text)



class Text(FieldType):
    expected = "text"
    default_length = 255
    pattern: re.Pattern | None = None
    invalid_key = "pattern"

    def column_type(self, f):
        return sa.String(f.max_length or self.default_length)

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
                raise Invalid("type", expected="text without NUL characters")
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


INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
#: Total digits of the NUMERIC columns that hold decimal, currency and percent values.
NUMERIC_DIGITS = 20


class Integer(FieldType):
    expected = "an integer"

    def column_type(self, f):
        return sa.BigInteger()

    def check(self, f):
        lo = f.min if f.min is not None else INT64_MIN
        hi = f.max if f.max is not None else INT64_MAX

        def check(value):
            if value is None:
                return None
            if type(value) is not int:
                raise Invalid("type", expected="an integer")
            if lo is not None and value < lo:
                raise Invalid("min", min=lo)
            if hi is not None and value > hi:
                raise Invalid("max", max=hi)
            return value
        return check

    def parse_query(self, f, text):
        try:
            value = int(text)
        except ValueError:
            raise Invalid("type", expected="an integer") from None
        if not INT64_MIN <= value <= INT64_MAX:
            raise Invalid("type", expected="a 64-bit integer")
        return value


class Number(FieldType):
    """decimal, currency, percent: JSON numbers (numeric strings accepted), fixed precision."""

    expected = "a number"
    default_precision = 2

    def column_type(self, f):
        return sa.Numeric(NUMERIC_DIGITS, self.precision(f), asdecimal=False)

    def precision(self, f):
        return f.precision if f.precision is not None else self.default_precision

    def check(self, f):
        places, lo, hi = self.precision(f), f.min, f.max
        bound = 10 ** (NUMERIC_DIGITS - places)  # the column holds values strictly inside ±bound

        def check(value):
            if value is None:
                return None
            if type(value) is str:
                try:
                    parsed = Decimal(value.strip())
                except InvalidOperation:
                    raise Invalid("type", expected="a number") from None
                if not parsed.is_finite():
                    raise Invalid("type", expected="a number")
                if -parsed.as_tuple().exponent > places:
                    raise Invalid("precision", precision=places)
                value = float(parsed)
            elif type(value) is int or type(value) is float:
                if not math.isfinite(value):
                    raise Invalid("type", expected="a number")
                if round(value, places) != value:
                    raise Invalid("precision", precision=places)
            else:
                raise Invalid("type", expected="a number")
            if lo is not None and value < lo:
                raise Invalid("min", min=lo)
            if hi is not None and value > hi:
                raise Invalid("max", max=hi)
            if not -bound < value < bound:
                raise Invalid("too_large", digits=NUMERIC_DIGITS - places)
            return value
        return check


class Boolean(FieldType):
    expected = "true or false"

    def column_type(self, f):
        return sa.Boolean()

    def check(self, f):
        def check(value):
            if value is None or type(value) is bool:
                return value
            raise Invalid("type", expected="true or false")
        return check

    def parse_query(self, f, text):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise Invalid("type", expected="true or false")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Date(FieldType):
    def column_type(self, f):
        return sa.Date()

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
    def column_type(self, f):
        return UTCDateTime()

    def check(self, f):
        def check(value):
            if value is None or value == "":
                return None
            if type(value) is not str:
                raise Invalid("datetime")
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise Invalid("datetime") from None
            if parsed.tzinfo is None:
                raise Invalid("datetime")
            return parsed.astimezone(UTC)
        return check

    def to_json(self, value):
        return None if value is None else value.astimezone(UTC).isoformat()


class Select(FieldType):
    def column_type(self, f):
        return sa.String(64)

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


class MultiSelect(FieldType):
    sortable = False

    def column_type(self, f):
        return sa.JSON()

    def check(self, f):
        one = SELECT.check(f)

        def check(value):
            if value is None:
                return None
            if type(value) is not list:
                raise Invalid("type", expected="a list of choices")
            chosen = [one(v) for v in value]
            return list(dict.fromkeys(v for v in chosen if v is not None)) or None
        return check

    def parse_query(self, f, text):
        """A filter names one choice (``filter[tags][contains]=vip``)."""
        return SELECT.check(f)(text)


class Identifier(FieldType):
    """reference, user, file: the id of another row (existence is checked by the record service)."""

    def column_type(self, f):
        return sa.String(36)

    def check(self, f):
        def check(value):
            if value is None or value == "":
                return None
            if type(value) is not str or len(value) > 36:
                raise Invalid("type", expected="an id")
            return value
        return check


class AutoNumber(Text):
    default_length = 64


class Formula(FieldType):
    """Computed on read from other fields; nothing stored."""

    stored = False
    sortable = False

    def columns(self, f):
        return []

    def check(self, f):
        raise AssertionError("formula fields are read-only")

    def from_row(self, f, row):
        return None

    def to_row(self, f, value):
        return {}

    def to_json(self, value):
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value


class Geo(FieldType):
    """Latitude/longitude in two float columns, ``<name>_lat`` and ``<name>_lon``."""

    sortable = False

    def columns(self, f):
        return [sa.Column(f"{f.name}_lat", sa.Double(), info={"field": f}),
                sa.Column(f"{f.name}_lon", sa.Double(), info={"field": f})]

    def check(self, f):
        def coordinate(value, low, high):
            if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
                raise Invalid("type", expected='{"lat": -90..90, "lon": -180..180}')
            return float(value)

        def check(value):
            if value is None:
                return None
            if type(value) is not dict or set(value) != {"lat", "lon"}:
                raise Invalid("type", expected='{"lat": -90..90, "lon": -180..180}')
            return {"lat": coordinate(value["lat"], -90, 90), "lon": coordinate(value["lon"], -180, 180)}
        return check

    def from_row(self, f, row):
        lat = row[f"{f.name}_lat"]
        return None if lat is None else {"lat": lat, "lon": row[f"{f.name}_lon"]}

    def to_row(self, f, value):
        return {f"{f.name}_lat": value and value["lat"], f"{f.name}_lon": value and value["lon"]}

    def parse_query(self, f, text):
        raise Invalid("type", expected="a field that can be filtered")


SELECT = Select()
TYPES: MappingProxyType[str, FieldType] = MappingProxyType({
    "text": Text(), "textarea": TextArea(), "email": Email(), "phone": Phone(), "url": Url(),
    "integer": Integer(), "decimal": Number(), "currency": Number(), "percent": Number(),
    "boolean": Boolean(), "date": Date(), "datetime": DateTime(), "select": SELECT,
    "multiselect": MultiSelect(), "reference": Identifier(), "user": Identifier(), "file": Identifier(),
    "formula": Formula(), "autonumber": AutoNumber(), "geo": Geo(),
})
