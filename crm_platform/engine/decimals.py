"""Exact decimal numbers: how decimal, currency and percent values are read and stored.

Values are :class:`decimal.Decimal` from the JSON parser to the database and back; nothing passes
through a binary float. PostgreSQL stores them in ``NUMERIC(20, places)``. SQLite has no decimal
type (a ``NUMERIC`` column turns ``"12345678901234.56"`` into a REAL and keeps 15 digits), so there
the same ``NUMERIC(20, places)`` column holds a fixed-width text key that is not a number literal
(SQLite keeps it as TEXT) and whose text order is the numeric order: ``P`` + the value's 20 digits
for zero and above, ``N`` + the 20 digits of ``10**20 + value`` below zero (``-1234.56`` at 2 places
is ``N999999999999998765.44``). Filters, sorting and cursors compare keys in SQL, so they stay exact.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

import sqlalchemy as sa

#: Total digits of the NUMERIC columns that hold decimal, currency and percent values.
NUMERIC_DIGITS = 20

#: Enough precision for every value a column holds (and the arithmetic on keys); never traps on Inexact.
EXACT = Context(prec=2 * NUMERIC_DIGITS, rounding=ROUND_HALF_EVEN, Emax=999_999_999, Emin=-999_999_999)


def from_float(value: float) -> Decimal:
    """The Decimal a person means by a float: the shortest repr (``0.1`` → ``Decimal('0.1')``)."""
    return Decimal(repr(value))


def to_decimal(value) -> Decimal:
    """A Decimal from a Decimal, int, float or numeric string; :class:`ValueError` otherwise."""
    kind = type(value)
    if kind is Decimal:
        return value
    if kind is int:
        return Decimal(value)
    if kind is float:
        return from_float(value)
    if kind is str:
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    raise ValueError(f"not a number: {value!r}")


class _SQLiteKey(sa.types.UserDefinedType):
    """The SQLite side of :class:`ExactNumeric`: declared ``NUMERIC(20, places)``, holding text keys."""

    cache_ok = True

    def __init__(self, places: int):
        self.places = places

    def get_col_spec(self, **kw) -> str:
        return f"NUMERIC({NUMERIC_DIGITS}, {self.places})"


class ExactNumeric(sa.types.TypeDecorator):
    """``NUMERIC(20, places)`` that reads and writes :class:`Decimal` exactly on every backend."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, places: int):
        super().__init__(NUMERIC_DIGITS, places, asdecimal=True)
        self.places = places

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return _SQLiteKey(self.places)
        return dialect.type_descriptor(sa.Numeric(NUMERIC_DIGITS, self.places, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = to_decimal(value)
        return sort_key(value, self.places) if dialect.name == "sqlite" else value

    def process_literal_param(self, value, dialect):
        if value is None:
            return "NULL"
        value = self.process_bind_param(value, dialect)
        return f"'{value}'" if dialect.name == "sqlite" else str(value)

    def process_result_value(self, value, dialect):
        if value is None or type(value) is Decimal:
            return value
        if type(value) is str:
            return from_sort_key(value)
        # A REAL/INTEGER written by a version before exact storage (SQLite): its shortest repr.
        return to_decimal(value).quantize(Decimal(1).scaleb(-self.places), context=EXACT)

    @property
    def python_type(self):
        return Decimal


def sort_key(value: Decimal, places: int) -> str:
    """The SQLite text key of ``value`` at ``places`` decimals (rounded half-even to them).
    Values outside the column's range (possible only in a filter or a sharing condition) get a
    key below (``M``) or above (``Q``) every stored one."""
    bound = 10 ** (NUMERIC_DIGITS - places)
    if not value.is_finite():
        if value.is_nan():
            raise ValueError("NaN has no place in an ordering")
        return "M" if value < 0 else "Q"
    if value >= bound:
        return "Q"
    if value <= -bound:
        return "M"
    scaled = int(value.scaleb(places, context=EXACT).to_integral_value(context=EXACT))
    if scaled >= 10 ** NUMERIC_DIGITS:  # rounding up reached the bound
        return "Q"
    if scaled <= -(10 ** NUMERIC_DIGITS):
        return "M"
    sign, digits = ("P", scaled) if scaled >= 0 else ("N", 10 ** NUMERIC_DIGITS + scaled)
    text = f"{digits:0{NUMERIC_DIGITS}d}"
    return f"{sign}{text[:-places]}.{text[-places:]}" if places else sign + text


def from_sort_key(key: str) -> Decimal:
    """The Decimal a :func:`sort_key` stands for (its places are read off the key itself)."""
    sign, text = key[:1], key[1:]
    if sign == "P":
        return Decimal(text)
    if sign == "N":
        whole = text.partition(".")[0]
        return EXACT.subtract(Decimal(text), Decimal(10 ** len(whole)))
    raise ValueError(f"not a decimal key: {key!r}")


def from_stored(value) -> Decimal:
    """The Decimal a value read raw (untyped) from an amount column stands for: a key, a REAL or INTEGER
    written before exact storage (SQLite), or a Decimal (PostgreSQL)."""
    return from_sort_key(value) if type(value) is str else to_decimal(value)


def key_glob(places: int) -> str:
    """A SQLite GLOB pattern that matches exactly the keys :func:`sort_key` writes at ``places``."""
    whole = "[PN]" + "[0-9]" * (NUMERIC_DIGITS - places)
    return whole + "." + "[0-9]" * places if places else whole


def stale_sqlite_keys(conn: sa.Connection, table_name: str, column_name: str, places: int) -> int:
    """How many stored values of an amount column (SQLite) are not keys of ``places``: REALs from before
    exact storage, keys of another precision. What :func:`rewrite_sqlite_keys` would rewrite."""
    column = sa.column(column_name)
    query = (sa.select(sa.func.count()).select_from(sa.table(table_name))
             .where(column.is_not(None), sa.not_(column.op("GLOB", is_comparison=True)(key_glob(places)))))
    return conn.execute(query).scalar_one()


def rewrite_sqlite_keys(conn: sa.Connection, table: sa.Table, columns: list[sa.Column] | None = None) -> int:
    """Re-encode every stored amount of ``table`` on SQLite as the key of its column's current places.

    Needed where a column's stored text no longer matches its type: REALs written before exact storage
    (read back by their repr, but sorted before every key), and keys of another number of places after a
    field's ``precision`` changed (read back right, but ordered wrongly against the new ones). Reads each
    value through the column type and writes it back; returns how many values were rewritten. Only
    ``columns`` if given, else every amount column. A no-op on other databases.
    """
    if conn.dialect.name != "sqlite":
        return 0
    done = 0
    for column in (c for c in (table.c if columns is None else columns) if isinstance(c.type, ExactNumeric)):
        stored = sa.select(table.c.id, sa.type_coerce(column, sa.Text).label("raw"), column.label("value"))
        updates = [{"_id": row.id, "_value": row.value}
                   for row in conn.execute(stored.where(column.is_not(None)))
                   if row.raw != sort_key(row.value, column.type.places)]
        if updates:
            statement = table.update().where(table.c.id == sa.bindparam("_id"))
            conn.execute(statement.values({column.name: sa.bindparam("_value", type_=column.type)}), updates)
            done += len(updates)
    return done
