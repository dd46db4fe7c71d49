"""The floor of the validation benchmark: a validator written by hand for exactly the benchmark entity,
doing the same checks and normalisation as the engine and collecting every error per field."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from urllib.parse import urlsplit

from .validation_record import STATUS, PRIORITY, REGION, INDUSTRY, TAGS, CHANNELS, RECORD

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE = re.compile(r"\+?[0-9]{3,20}(?:ext[0-9]{1,6})?")
_PHONE_NOISE = re.compile(r"[\s().\-]")
_CODE = re.compile(r"[A-Z]{3}-[0-9]{4}")
_POSTCODE = re.compile(r"[0-9]{6}")
_KNOWN = frozenset(RECORD)
_STATUS, _PRIORITY, _REGION, _INDUSTRY = frozenset(STATUS), frozenset(PRIORITY), frozenset(REGION), frozenset(INDUSTRY)
_TAGS, _CHANNELS = frozenset(TAGS), frozenset(CHANNELS)
_M = object()  # an absent key
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_BOUNDS = {places: 10 ** (20 - places) for places in range(8)}  # NUMERIC(20, places) holds |v| < bound
_QUANTA = {places: Decimal(1).scaleb(-places) for places in range(8)}
_ZEROS = {places: Decimal(0).quantize(q) for places, q in _QUANTA.items()}
_EXACT = Context(prec=40)
_NUMERAL = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,9})?\s*", re.ASCII)
_D0, _D100 = Decimal(0), Decimal(100)


class Bad(Exception):
    pass


def _text(v, limit, pattern=None, strip=True):
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


def _phone(v):
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


def _url(v):
    v = _text(v, 2048)
    if v is not None:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in v:
            raise Bad("url")
    return v


def _int(v, lo=_INT64_MIN, hi=_INT64_MAX):
    if v is None:
        return None
    if type(v) is not int:
        raise Bad("type")
    if v < lo:
        raise Bad("min")
    if v > hi:
        raise Bad("max")
    return v


def _number(v, places, lo=None, hi=None):
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


def _bool(v):
    if v is None or type(v) is bool:
        return v
    raise Bad("type")


def _date(v):
    if v is None or v == "":
        return None
    if type(v) is not str or not _ISO_DATE.fullmatch(v):
        raise Bad("date")
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise Bad("date") from None


def _datetime(v):
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


def _select(v, allowed):
    if v is None or v == "":
        return None
    if type(v) is not str or v not in allowed:
        raise Bad("choice")
    return v


def _multi(v, allowed):
    if v is None:
        return None
    if type(v) is not list:
        raise Bad("type")
    out = []
    for item in v:
        item = _select(item, allowed)
        if item is not None and item not in out:
            out.append(item)
    return out or None


def _id(v):
    if v is None or v == "":
        return None
    if type(v) is not str or len(v) > 36:
        raise Bad("type")
    return v


def _geo(v):
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


def floor_validate(data):
    """Hand-written for this entity, straight-line: every sent field checked and normalised,
    unknown fields and missing required ones reported, errors collected per field."""
    errors: dict[str, list[str]] = {}
    values = {}
    get = data.get
    for name in data.keys() - _KNOWN:
        errors[name] = ["unknown_field"]
    v = get("title", _M)
    if v is not _M:
        try:
            values["title"] = _text(v, 200)
        except Bad as exc:
            errors.setdefault("title", []).append(exc.args[0])
    v = get("code", _M)
    if v is not _M:
        try:
            values["code"] = _text(v, 20, _CODE)
        except Bad as exc:
            errors.setdefault("code", []).append(exc.args[0])
    v = get("subtitle", _M)
    if v is not _M:
        try:
            values["subtitle"] = _text(v, 100)
        except Bad as exc:
            errors.setdefault("subtitle", []).append(exc.args[0])
    v = get("notes", _M)
    if v is not _M:
        try:
            values["notes"] = _text(v, 2000, strip=False)
        except Bad as exc:
            errors.setdefault("notes", []).append(exc.args[0])
    v = get("description", _M)
    if v is not _M:
        try:
            values["description"] = _text(v, 65535, strip=False)
        except Bad as exc:
            errors.setdefault("description", []).append(exc.args[0])
    v = get("email", _M)
    if v is not _M:
        try:
            values["email"] = _text(v, 254, _EMAIL)
        except Bad as exc:
            errors.setdefault("email", []).append(exc.args[0])
    v = get("alt_email", _M)
    if v is not _M:
        try:
            values["alt_email"] = _text(v, 254, _EMAIL)
        except Bad as exc:
            errors.setdefault("alt_email", []).append(exc.args[0])
    v = get("phone", _M)
    if v is not _M:
        try:
            values["phone"] = _phone(v)
        except Bad as exc:
            errors.setdefault("phone", []).append(exc.args[0])
    v = get("mobile", _M)
    if v is not _M:
        try:
            values["mobile"] = _phone(v)
        except Bad as exc:
            errors.setdefault("mobile", []).append(exc.args[0])
    v = get("website", _M)
    if v is not _M:
        try:
            values["website"] = _url(v)
        except Bad as exc:
            errors.setdefault("website", []).append(exc.args[0])
    v = get("quantity", _M)
    if v is not _M:
        try:
            values["quantity"] = _int(v, 0, 1_000_000)
        except Bad as exc:
            errors.setdefault("quantity", []).append(exc.args[0])
    v = get("rank", _M)
    if v is not _M:
        try:
            values["rank"] = _int(v, 1, 100)
        except Bad as exc:
            errors.setdefault("rank", []).append(exc.args[0])
    v = get("headcount", _M)
    if v is not _M:
        try:
            values["headcount"] = _int(v, 0)
        except Bad as exc:
            errors.setdefault("headcount", []).append(exc.args[0])
    v = get("weight", _M)
    if v is not _M:
        try:
            values["weight"] = _number(v, 3, _D0)
        except Bad as exc:
            errors.setdefault("weight", []).append(exc.args[0])
    v = get("ratio", _M)
    if v is not _M:
        try:
            values["ratio"] = _number(v, 4)
        except Bad as exc:
            errors.setdefault("ratio", []).append(exc.args[0])
    v = get("amount", _M)
    if v is not _M:
        try:
            values["amount"] = _number(v, 2, _D0)
        except Bad as exc:
            errors.setdefault("amount", []).append(exc.args[0])
    v = get("cost", _M)
    if v is not _M:
        try:
            values["cost"] = _number(v, 2, _D0)
        except Bad as exc:
            errors.setdefault("cost", []).append(exc.args[0])
    v = get("budget", _M)
    if v is not _M:
        try:
            values["budget"] = _number(v, 2)
        except Bad as exc:
            errors.setdefault("budget", []).append(exc.args[0])
    v = get("discount", _M)
    if v is not _M:
        try:
            values["discount"] = _number(v, 2, _D0, _D100)
        except Bad as exc:
            errors.setdefault("discount", []).append(exc.args[0])
    v = get("probability", _M)
    if v is not _M:
        try:
            values["probability"] = _number(v, 2, _D0, _D100)
        except Bad as exc:
            errors.setdefault("probability", []).append(exc.args[0])
    v = get("active", _M)
    if v is not _M:
        try:
            values["active"] = _bool(v)
        except Bad as exc:
            errors.setdefault("active", []).append(exc.args[0])
    v = get("vip", _M)
    if v is not _M:
        try:
            values["vip"] = _bool(v)
        except Bad as exc:
            errors.setdefault("vip", []).append(exc.args[0])
    v = get("consent", _M)
    if v is not _M:
        try:
            values["consent"] = _bool(v)
        except Bad as exc:
            errors.setdefault("consent", []).append(exc.args[0])
    v = get("start_date", _M)
    if v is not _M:
        try:
            values["start_date"] = _date(v)
        except Bad as exc:
            errors.setdefault("start_date", []).append(exc.args[0])
    v = get("end_date", _M)
    if v is not _M:
        try:
            values["end_date"] = _date(v)
        except Bad as exc:
            errors.setdefault("end_date", []).append(exc.args[0])
    v = get("birthday", _M)
    if v is not _M:
        try:
            values["birthday"] = _date(v)
        except Bad as exc:
            errors.setdefault("birthday", []).append(exc.args[0])
    v = get("due_at", _M)
    if v is not _M:
        try:
            values["due_at"] = _datetime(v)
        except Bad as exc:
            errors.setdefault("due_at", []).append(exc.args[0])
    v = get("last_contact_at", _M)
    if v is not _M:
        try:
            values["last_contact_at"] = _datetime(v)
        except Bad as exc:
            errors.setdefault("last_contact_at", []).append(exc.args[0])
    v = get("status", _M)
    if v is not _M:
        try:
            values["status"] = _select(v, _STATUS)
        except Bad as exc:
            errors.setdefault("status", []).append(exc.args[0])
    v = get("priority", _M)
    if v is not _M:
        try:
            values["priority"] = _select(v, _PRIORITY)
        except Bad as exc:
            errors.setdefault("priority", []).append(exc.args[0])
    v = get("region", _M)
    if v is not _M:
        try:
            values["region"] = _select(v, _REGION)
        except Bad as exc:
            errors.setdefault("region", []).append(exc.args[0])
    v = get("industry", _M)
    if v is not _M:
        try:
            values["industry"] = _select(v, _INDUSTRY)
        except Bad as exc:
            errors.setdefault("industry", []).append(exc.args[0])
    v = get("tags", _M)
    if v is not _M:
        try:
            values["tags"] = _multi(v, _TAGS)
        except Bad as exc:
            errors.setdefault("tags", []).append(exc.args[0])
    v = get("channels", _M)
    if v is not _M:
        try:
            values["channels"] = _multi(v, _CHANNELS)
        except Bad as exc:
            errors.setdefault("channels", []).append(exc.args[0])
    v = get("parent", _M)
    if v is not _M:
        try:
            values["parent"] = _id(v)
        except Bad as exc:
            errors.setdefault("parent", []).append(exc.args[0])
    v = get("assignee", _M)
    if v is not _M:
        try:
            values["assignee"] = _id(v)
        except Bad as exc:
            errors.setdefault("assignee", []).append(exc.args[0])
    v = get("location", _M)
    if v is not _M:
        try:
            values["location"] = _geo(v)
        except Bad as exc:
            errors.setdefault("location", []).append(exc.args[0])
    v = get("city", _M)
    if v is not _M:
        try:
            values["city"] = _text(v, 100)
        except Bad as exc:
            errors.setdefault("city", []).append(exc.args[0])
    v = get("postcode", _M)
    if v is not _M:
        try:
            values["postcode"] = _text(v, 10, _POSTCODE)
        except Bad as exc:
            errors.setdefault("postcode", []).append(exc.args[0])
    v = get("remarks", _M)
    if v is not _M:
        try:
            values["remarks"] = _text(v, 500, strip=False)
        except Bad as exc:
            errors.setdefault("remarks", []).append(exc.args[0])
    for name in ("title", "email", "quantity", "amount", "start_date", "status"):
        v = values.get(name)
        if (v is None or v == "" or v == []) and name not in errors:
            errors.setdefault(name, []).append("required")
    return values, errors
