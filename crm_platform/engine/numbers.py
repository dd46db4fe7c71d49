"""The numeric field types: ``integer`` (64-bit) and ``decimal``/``currency``/``percent``
(exact :class:`~decimal.Decimal` amounts of a fixed number of places; storage in ``decimals.py``,
including the SQLite keys a migration re-encodes)."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

import sqlalchemy as sa

from .decimals import (
    EXACT,
    NUMERIC_DIGITS,
    ExactNumeric,
    from_float,
    rewrite_sqlite_keys,
    stale_sqlite_keys,
    to_decimal,
)
from .fieldtype import INTEGER, NUMBER, FieldType, Invalid

__all__ = ["INT64_MAX", "INT64_MIN", "NUMERIC_DIGITS", "Integer", "Number"]


INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class Integer(FieldType):
    expected = "integer"
    result_schema = INTEGER

    def column_type(self, f):
        return sa.BigInteger()

    def schema(self, f):
        return {"type": "integer", "minimum": f.min if f.min is not None else INT64_MIN,
                "maximum": f.max if f.max is not None else INT64_MAX}

    def query_schema(self, f):
        """Any 64-bit integer: the field's range does not bound a query."""
        return {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}

    def check(self, f):
        lo = f.min if f.min is not None else INT64_MIN
        hi = f.max if f.max is not None else INT64_MAX

        def check(value):
            if value is None:
                return None
            if type(value) is not int:
                raise Invalid("type", expected="integer")
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
            raise Invalid("type", expected="integer") from None
        if not INT64_MIN <= value <= INT64_MAX:
            raise Invalid("type", expected="integer_64")
        return value

    def convert(self, f, value):
        """A whole number converts (``12.00`` → 12); a fraction would be lost, so it does not."""
        if type(value) is float:
            value = from_float(value)
        if type(value) is Decimal:
            if not value.is_finite() or value != value.to_integral_value():
                raise Invalid("type", expected="integer")
            value = int(value)
        return self.parse_query(f, str(value))


class Number(FieldType):
    """decimal, currency, percent: exact :class:`Decimal` values of a fixed number of places.

    Accepted: JSON numbers (int or Decimal from the parser), numeric strings, and floats from Python
    callers and JSON definitions (read by their repr: ``0.1`` is ``Decimal('0.1')``). The value must
    fit the column (``NUMERIC(20, places)``: fewer than ``20 - places`` whole digits) and have no more
    significant places than the field (``"1.10"`` fits one place). It is returned quantized to the
    field's places, so ``1.5`` at 2 places reads back as ``1.50`` on every database.
    """

    expected = "number"
    default_precision = 2
    result_schema = NUMBER

    def column_type(self, f):
        return ExactNumeric(self.precision(f))

    def precision(self, f):
        return f.precision if f.precision is not None else self.default_precision

    def check(self, f):
        places = self.precision(f)
        quantum, digits = Decimal(1).scaleb(-places), NUMERIC_DIGITS - places
        bound = 10 ** digits  # the column holds values strictly inside ±bound
        zero = Decimal(0).quantize(quantum)
        shown_lo, shown_hi = f.min, f.max  # as the definition wrote them, for the messages
        lo = None if f.min is None else to_decimal(f.min)
        hi = None if f.max is None else to_decimal(f.max)

        def check(value):
            if value is None:
                return None
            kind = type(value)
            if kind is Decimal:
                number = value
            elif kind is int:
                number = Decimal(value) if -bound < value < bound else Decimal(bound if value > 0 else -bound)
            elif kind is float:
                number = from_float(value)
            elif kind is str:
                if not _NUMBER.fullmatch(value):
                    raise Invalid("type", expected="number")
                number = Decimal(value)
            else:
                raise Invalid("type", expected="number")
            if not number.is_finite():
                raise Invalid("type", expected="number")
            # Comparisons are exact and never raise, whatever the exponent (1e999999 is just large).
            if lo is not None and number < lo:
                raise Invalid("min", min=shown_lo)
            if hi is not None and number > hi:
                raise Invalid("max", max=shown_hi)
            if not -bound < number < bound:
                raise Invalid("too_large", digits=digits)
            exact = number.quantize(quantum, context=EXACT)  # fits: fewer than 20 digits
            if exact != number:
                raise Invalid("precision", precision=places)
            return exact if exact else zero  # -0.00 is 0.00
        return check

    def to_json(self, value):
        return value  # a Decimal: the web layer writes its exact digits as a JSON number

    def schema(self, f):
        """The stored range: the field's min/max, inside what NUMERIC(20, precision) holds."""
        bound = 10 ** (NUMERIC_DIGITS - self.precision(f))
        schema = {"type": "number"}
        schema |= {"minimum": f.min} if f.min is not None else {"minimum": -bound, "exclusiveMinimum": True}
        schema |= {"maximum": f.max} if f.max is not None else {"maximum": bound, "exclusiveMaximum": True}
        return schema

    def input_schema(self, f):
        """JSON numbers, or numeric strings (exact decimals), with at most ``precision`` decimal places."""
        return {"oneOf": [self.schema(f), {"type": "string", "pattern": NUMERAL}],
                "description": f"At most {self.precision(f)} decimal places (a numeric string is read exactly)."}

    def parse_query(self, f, text):
        """A filter value: a numeral the column can hold at the field's places (so the comparison is
        exact on every database), but not bound by the field's min/max (``amount > -1`` is a fine query)."""
        return self.check(replace(f, min=None, max=None))(text)

    def convert(self, f, value):
        """A stored number (or numeral) converts when the column can hold it at the field's places."""
        return self.check(replace(f, min=None, max=None))(value)

    def stale_values(self, conn, table_name, column, stored_as):
        """SQLite: amounts not stored as keys of the column's places (REALs written before exact
        storage sort before every key; keys of another precision sort wrongly against the new ones)."""
        if conn.dialect.name != "sqlite":
            return None
        stale = stale_sqlite_keys(conn, table_name, stored_as, column.type.places)
        return f"{stale} stored value(s) to re-encode as exact {column.type.places}-place keys" if stale else None

    def rewrite_values(self, conn, table, column):
        rewrite_sqlite_keys(conn, table, [column])


#: A plain decimal numeral (what a numeric string may hold): ASCII digits, an optional sign, point
#: and exponent, spaces around. Unlike ``Decimal()`` it refuses "NaN", "Infinity", "1_000" and "١٢".
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,9})?\s*", re.ASCII)
#: The same numeral as a JSON Schema pattern (ECMA 262: ``\s`` spelled out as ASCII whitespace).
NUMERAL = r"^[ \t\n\r\f\v]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,9})?[ \t\n\r\f\v]*$"
