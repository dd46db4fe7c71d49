"""The fixed function library of the expression language (see :mod:`.expressions`).

Every function is small, pure (``today``/``now`` read the clock) and tolerant of ``None``: a missing
value gives ``None`` (or ``False``/``0`` where the function is a test or a count) instead of an error.
A value of the wrong type may raise ``TypeError``/``ValueError``; the compiled expression turns that into
``None``. Dates arrive as :class:`datetime.date`/:class:`datetime.datetime` objects; ISO strings are also
accepted. An aware datetime counts by its UTC calendar day, like :func:`today`.

Imports only the standard library.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import types
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["FUNCTIONS"]


def _as_date(value: object) -> _dt.date | None:
    """A calendar date from a date, a datetime (aware → its UTC day) or an ISO string; None stays None."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc)
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        return _as_date(_dt.datetime.fromisoformat(text)) if builtins.len(text) > 10 else _dt.date.fromisoformat(text)
    raise TypeError(f"not a date: {value!r}")


def today() -> _dt.date:
    """Today's date in UTC."""
    return _dt.datetime.now(_dt.timezone.utc).date()


def now() -> _dt.datetime:
    """The current time, an aware datetime in UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


def days_between(a: object, b: object) -> int | None:
    """Calendar days from ``a`` to ``b`` (negative when ``b`` is earlier); None if either is None."""
    start, end = _as_date(a), _as_date(b)
    if start is None or end is None:
        return None
    return (end - start).days


def days_since(d: object) -> int | None:
    """Calendar days from ``d`` to today (UTC)."""
    return days_between(d, today())


def is_blank(x: object) -> bool:
    """True for None, an empty or whitespace-only string, and an empty list/tuple/dict/set."""
    if x is None:
        return True
    if isinstance(x, str):
        return not x.strip()
    if isinstance(x, (list, tuple, dict, set, frozenset)):
        return not x
    return False


def coalesce(*xs: object) -> object:
    """The first argument that is not blank (see :func:`is_blank`), else None."""
    for x in xs:
        if not is_blank(x):
            return x
    return None


def length(x: object) -> int:
    """Length of a string or list; None → 0."""
    return 0 if x is None else builtins.len(x)


def lower(s: str | None) -> str | None:
    return None if s is None else s.lower()


def upper(s: str | None) -> str | None:
    return None if s is None else s.upper()


def contains(haystack: object, needle: object) -> bool:
    """Substring test for strings, membership for lists; False when either is None."""
    if haystack is None or needle is None:
        return False
    if isinstance(haystack, str):
        return isinstance(needle, str) and needle in haystack
    if isinstance(haystack, (list, tuple, set, frozenset)):
        return needle in haystack
    return False


#: A rounded Decimal this large stays a Decimal (its int would have more digits than text may show).
_LARGEST_INT = Decimal("1E+300")


def round_(x: object, n: int = 0) -> object:
    """Round half away from zero, as spreadsheets do (``round(2.5)`` is 3, ``round(2.675, 2)`` is 2.68).

    Like Python's ``round``: ``n <= 0`` gives an int; ``n > 0`` keeps the type, so a Decimal stays
    exact (``round(amount * 0.13, 2)`` of an amount is a Decimal of 2 places) and a float stays a
    float. None → None.
    """
    if x is None or n is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float, Decimal)) or not isinstance(n, int):
        raise TypeError("round() needs a number and a whole number of digits")
    if isinstance(x, int) and n >= 0:
        return x
    exact = x if isinstance(x, Decimal) else Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
    if not exact.is_finite():
        raise ValueError("round() needs a finite number")
    if exact.as_tuple().exponent >= -n:
        rounded = exact  # nothing to round (and no quantize to overflow the context for a huge x)
    else:
        rounded = exact.quantize(Decimal(1).scaleb(-n), rounding=ROUND_HALF_UP)
    if n > 0:
        return rounded if isinstance(x, Decimal) else builtins.float(rounded)
    return builtins.int(rounded) if abs(rounded) < _LARGEST_INT else rounded


def _present(xs: tuple) -> list:
    if builtins.len(xs) == 1 and isinstance(xs[0], (list, tuple)):
        xs = tuple(xs[0])
    return [x for x in xs if x is not None]


def minimum(*xs: object) -> object:
    """The smallest argument (or item of a single list argument), ignoring None; all None → None.
    Decimals, ints and floats compare exactly with each other; the smallest is returned as it is."""
    present = _present(xs)
    return builtins.min(present) if present else None


def maximum(*xs: object) -> object:
    """The largest argument (or item of a single list argument), ignoring None; all None → None."""
    present = _present(xs)
    return builtins.max(present) if present else None


def absolute(x: object) -> object:
    """``|x|``; a Decimal stays a Decimal. None → None."""
    return None if x is None else builtins.abs(x)


def year(d: object) -> int | None:
    day = _as_date(d)
    return None if day is None else day.year


def month(d: object) -> int | None:
    day = _as_date(d)
    return None if day is None else day.month


def add_days(d: object, n: object) -> object:
    """``d`` plus ``n`` days; a datetime stays a datetime, a date a date. None if either is None."""
    if d is None or n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, float, Decimal)):
        raise TypeError("add_days() needs a number of days")
    if isinstance(d, str):
        d = _as_date(d)
    if not isinstance(d, _dt.date):
        raise TypeError("add_days() needs a date")
    return d + _dt.timedelta(days=builtins.float(n) if isinstance(n, Decimal) else n)


FUNCTIONS = types.MappingProxyType({
    "today": today,
    "now": now,
    "days_between": days_between,
    "days_since": days_since,
    "is_blank": is_blank,
    "coalesce": coalesce,
    "len": length,
    "lower": lower,
    "upper": upper,
    "contains": contains,
    "round": round_,
    "min": minimum,
    "max": maximum,
    "abs": absolute,
    "year": year,
    "month": month,
    "add_days": add_days,
})
"""The function library, by the name expressions call it; read-only."""
