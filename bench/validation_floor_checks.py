"""Hand-written value checks for the validation floor: one small function per field type doing
exactly what the engine's compiled check does (strict types, lengths, patterns, ranges, exact
decimals, ISO dates, aware UTC datetimes), raising :class:`Bad` with the engine's message key."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from urllib.parse import urlsplit

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE = re.compile(r"\+?[0-9]{3,20}(?:ext[0-9]{1,6})?")
_PHONE_NOISE = re.compile(r"[\s().\-]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_BOUNDS = {places: 10 ** (20 - places) for places in range(8)}  # NUMERIC(20, places) holds |v| < bound
_QUANTA = {places: Decimal(1).scaleb(-places) for places in range(8)}
_ZEROS = {places: Decimal(0).quantize(q) for places, q in _QUANTA.items()}
_EXACT = Context(prec=40)
_NUMERAL = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,9})?\s*", re.ASCII)
D0, D100 = Decimal(0), Decimal(100)


class Bad(Exception):
    pass


def check_text(v, limit, pattern=None, strip=True):
    if v is None:
        return None
    if type(v) is not str:
        raise Bad("type")
    if strip:
        v = v.strip()
    elif not v.strip():
        v = ""
    if not v:
        return None
    if "\x00" in v:
        raise Bad("type")
    if len(v) > limit:
        raise Bad("max_length")
    if pattern is not None and not pattern.fullmatch(v):
        raise Bad("pattern")
    return v


def check_phone(v):
    if v is None:
        return None
    if type(v) is not str:
        raise Bad("type")
    v = _PHONE_NOISE.sub("", v)
    if not v:
        return None
    if "\x00" in v:
        raise Bad("type")
    if len(v) > 32:
        raise Bad("max_length")
    if not _PHONE.fullmatch(v):
        raise Bad("phone")
    return v


def check_url(v):
    v = check_text(v, 2048)
    if v is not None:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in v:
            raise Bad("url")
    return v


def check_int(v, lo=_INT64_MIN, hi=_INT64_MAX):
    if v is None:
        return None
    if type(v) is not int:
        raise Bad("type")
    if v < lo:
        raise Bad("min")
    if v > hi:
        raise Bad("max")
    return v


def check_number(v, places, lo=None, hi=None):
    """An exact Decimal at ``places``: from a Decimal or int (what the JSON parser gives), a float
    (by its repr) or a plain numeral string; range checked before anything can overflow."""
    if v is None:
        return None
    kind = type(v)
    bound = _BOUNDS[places]
    if kind is Decimal:
        d = v
    elif kind is int:
        d = Decimal(v) if -bound < v < bound else Decimal(bound if v > 0 else -bound)
    elif kind is float:
        d = Decimal(repr(v))
    elif kind is str:
        if not _NUMERAL.fullmatch(v):
            raise Bad("type")
        d = Decimal(v)
    else:
        raise Bad("type")
    if not d.is_finite():
        raise Bad("type")
    if lo is not None and d < lo:
        raise Bad("min")
    if hi is not None and d > hi:
        raise Bad("max")
    if not -bound < d < bound:
        raise Bad("too_large")
    exact = d.quantize(_QUANTA[places], context=_EXACT)
    if exact != d:
        raise Bad("precision")
    return exact if exact else _ZEROS[places]


def check_bool(v):
    if v is None or type(v) is bool:
        return v
    raise Bad("type")


def check_date(v):
    if v is None or v == "":
        return None
    if type(v) is not str or not _ISO_DATE.fullmatch(v):
        raise Bad("date")
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise Bad("date") from None


def check_datetime(v):
    if v is None or v == "":
        return None
    if type(v) is not str:
        raise Bad("datetime")
    try:
        d = datetime.fromisoformat(v)
    except ValueError:
        raise Bad("datetime") from None
    if d.tzinfo is None:
        raise Bad("datetime")
    return d.astimezone(UTC)


def check_select(v, allowed):
    if v is None or v == "":
        return None
    if type(v) is not str or v not in allowed:
        raise Bad("choice")
    return v


def check_multi(v, allowed):
    if v is None:
        return None
    if type(v) is not list:
        raise Bad("type")
    out = []
    for item in v:
        item = check_select(item, allowed)
        if item is not None and item not in out:
            out.append(item)
    return out or None


def check_id(v):
    if v is None or v == "":
        return None
    if type(v) is not str or len(v) > 36:
        raise Bad("type")
    return v


def check_geo(v):
    if v is None:
        return None
    if type(v) is not dict or set(v) != {"lat", "lon"}:
        raise Bad("type")
    lat, lon = v["lat"], v["lon"]
    if type(lat) is Decimal:
        if not lat.is_finite() or not -90 <= lat <= 90:
            raise Bad("type")
    elif type(lat) not in (int, float) or not math.isfinite(lat) or not -90 <= lat <= 90:
        raise Bad("type")
    if type(lon) is Decimal:
        if not lon.is_finite() or not -180 <= lon <= 180:
            raise Bad("type")
    elif type(lon) not in (int, float) or not math.isfinite(lon) or not -180 <= lon <= 180:
        raise Bad("type")
    return {"lat": float(lat), "lon": float(lon)}
