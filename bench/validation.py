"""Record validation of a 40-field record: the engine's compiled per-field checks vs a hand-written validator.

Engine: ``RecordValidator.parse`` (type, length, pattern, range, choices, unknown fields, with
normalisation: text stripped, phone noise removed, dates parsed) + ``RecordValidator.check``
(required) for an entity built by ``load_catalog`` from a temporary pack.
Floor: one plain-Python function written by hand for exactly this entity, doing the same checks and
the same normalisation, collecting every error per field.
Context: jsonschema (Draft 2020-12, compiled once, with format checks) and marshmallow (schema
instance built once, ``unknown=RAISE``) validating the same record.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

from .common import Row, compare, profile, row

ENTITY = "bench_record"


def _choices(*values):
    return [{"value": v, "label": {"en": v.title(), "zh": v}} for v in values]


STATUS = ("draft", "active", "paused", "closed", "archived")
PRIORITY = ("low", "normal", "high")
REGION = ("north", "northeast", "east", "central", "south", "southwest", "northwest", "overseas")
INDUSTRY = ("manufacturing", "it", "finance", "education", "healthcare", "retail", "food", "real_estate",
            "energy", "logistics", "telecom", "government", "services", "agriculture", "other")
TAGS = ("hot", "cold", "key_account", "referral", "partner", "strategic")
CHANNELS = ("phone", "email", "wechat", "visit", "event")


def _field(name, kind, **options):
    return {"name": name, "type": kind, "label": {"en": name.replace("_", " ").title(), "zh": name}, **options}


FIELDS = [
    _field("title", "text", required=True, max_length=200),
    _field("code", "text", max_length=20, pattern="[A-Z]{3}-[0-9]{4}"),
    _field("subtitle", "text", max_length=100),
    _field("notes", "textarea", max_length=2000),
    _field("description", "textarea"),
    _field("email", "email", required=True),
    _field("alt_email", "email"),
    _field("phone", "phone"),
    _field("mobile", "phone"),
    _field("website", "url"),
    _field("quantity", "integer", required=True, min=0, max=1_000_000),
    _field("rank", "integer", min=1, max=100),
    _field("headcount", "integer", min=0),
    _field("weight", "decimal", precision=3, min=0),
    _field("ratio", "decimal", precision=4),
    _field("amount", "currency", required=True, min=0, precision=2, currency="CNY"),
    _field("cost", "currency", min=0, precision=2, currency="CNY"),
    _field("budget", "currency", precision=2, currency="CNY"),
    _field("discount", "percent", min=0, max=100),
    _field("probability", "percent", min=0, max=100),
    _field("active", "boolean"),
    _field("vip", "boolean"),
    _field("consent", "boolean"),
    _field("start_date", "date", required=True),
    _field("end_date", "date"),
    _field("birthday", "date"),
    _field("due_at", "datetime"),
    _field("last_contact_at", "datetime"),
    _field("status", "select", required=True, choices=_choices(*STATUS)),
    _field("priority", "select", choices=_choices(*PRIORITY)),
    _field("region", "select", choices=_choices(*REGION)),
    _field("industry", "select", choices=_choices(*INDUSTRY)),
    _field("tags", "multiselect", choices=_choices(*TAGS)),
    _field("channels", "multiselect", choices=_choices(*CHANNELS)),
    _field("parent", "reference", target=ENTITY),
    _field("assignee", "user"),
    _field("location", "geo"),
    _field("city", "text", max_length=100),
    _field("postcode", "text", max_length=10, pattern="[0-9]{6}"),
    _field("remarks", "textarea", max_length=500),
]
assert len(FIELDS) == 40

RECORD = {
    "title": "  Annual framework agreement — cold-chain logistics  ",
    "code": "ABC-1234",
    "subtitle": "East China distribution centres",
    "notes": "Met the purchasing director twice; wants a pilot in Q3. " * 5,
    "description": "Three warehouses, 40 refrigerated trucks, temperature telemetry and a customer portal.",
    "email": "li.wei@example.com",
    "alt_email": "purchasing@example.cn",
    "phone": "+86 (21) 5555-0100",
    "mobile": "138 0013 8000",
    "website": "https://www.example.com/about",
    "quantity": 1200,
    "rank": 7,
    "headcount": 350,
    "weight": 12.375,
    "ratio": 0.4375,
    "amount": 1250000.50,
    "cost": "830000.25",
    "budget": 1500000,
    "discount": 12.5,
    "probability": 60,
    "active": True,
    "vip": False,
    "consent": True,
    "start_date": "2025-03-01",
    "end_date": "2026-02-28",
    "birthday": "1980-11-23",
    "due_at": "2025-06-30T18:00:00+08:00",
    "last_contact_at": "2025-05-12T09:30:00+00:00",
    "status": "active",
    "priority": "high",
    "region": "east",
    "industry": "logistics",
    "tags": ["hot", "key_account", "hot"],
    "channels": ["phone", "wechat"],
    "parent": "0190f3a2-7c1d-7e5f-8a9b-0c1d2e3f4a5b",
    "assignee": "0190f3a2-7c1d-7e5f-8a9b-0c1d2e3f4a5c",
    "location": {"lat": 31.2304, "lon": 121.4737},
    "city": "Shanghai",
    "postcode": "200000",
    "remarks": "Send the revised quote by Friday.",
}
assert set(RECORD) == {f["name"] for f in FIELDS}


def build_validator():
    """The engine's RecordValidator for the 40-field entity, loaded through a temporary pack."""
    from crm_platform.engine import compile_runtime
    from crm_platform.metadata import load_catalog
    with tempfile.TemporaryDirectory(prefix="crm-bench-pack-") as tmp:
        pack = Path(tmp) / "bench_pack"
        (pack / "entities").mkdir(parents=True)
        (pack / "pack.json").write_text(json.dumps(
            {"name": "bench_pack", "version": "1.0.0", "label": {"en": "Bench", "zh": "基准"}}))
        (pack / "entities" / f"{ENTITY}.json").write_text(json.dumps(
            {"name": ENTITY, "label": {"en": "Bench record", "zh": "基准记录"}, "fields": FIELDS}))
        catalog = load_catalog([str(pack)])
    return compile_runtime(catalog).entity(ENTITY).validator


def engine_validate(validator, data):
    errors: dict = {}
    values = validator.parse(data, errors)
    validator.check(values, values, None, None, errors)
    return values, errors


# --- the floor: written by hand for this one entity -------------------------------------------------

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
    if v is None:
        return None
    if type(v) is str:
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            raise Bad("type") from None
        if not d.is_finite() or -d.as_tuple().exponent > places:
            raise Bad("precision")
        v = float(d)
    elif type(v) is int or type(v) is float:
        if not math.isfinite(v) or round(v, places) != v:
            raise Bad("precision")
    else:
        raise Bad("type")
    if lo is not None and v < lo:
        raise Bad("min")
    if hi is not None and v > hi:
        raise Bad("max")
    bound = _BOUNDS[places]
    if not -bound < v < bound:
        raise Bad("too_large")
    return v


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
    if type(lat) not in (int, float) or not math.isfinite(lat) or not -90 <= lat <= 90:
        raise Bad("type")
    if type(lon) not in (int, float) or not math.isfinite(lon) or not -180 <= lon <= 180:
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
            values["weight"] = _number(v, 3, 0)
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
            values["amount"] = _number(v, 2, 0)
        except Bad as exc:
            errors.setdefault("amount", []).append(exc.args[0])
    v = get("cost", _M)
    if v is not _M:
        try:
            values["cost"] = _number(v, 2, 0)
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
            values["discount"] = _number(v, 2, 0, 100)
        except Bad as exc:
            errors.setdefault("discount", []).append(exc.args[0])
    v = get("probability", _M)
    if v is not _M:
        try:
            values["probability"] = _number(v, 2, 0, 100)
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


# --- context: general-purpose validators --------------------------------------------------------------

def _json_schema():
    props = {}
    for f in FIELDS:
        kind, p = f["type"], {}
        if kind in ("text", "textarea", "email", "phone", "url", "reference", "user"):
            p = {"type": ["string", "null"], "maxLength": f.get("max_length", {"textarea": 65535, "email": 254, "phone": 32,
                                                                            "url": 2048, "reference": 36, "user": 36}.get(kind, 255))}
            if f.get("pattern"):
                p["pattern"] = "^" + f["pattern"] + "$"
            if kind == "email":
                p["format"] = "email"
            if kind == "phone":
                p["pattern"] = r"^\+?[0-9 ().\-]{3,40}$"
            if kind == "url":
                p["pattern"] = "^https?://[^ ]+$"
        elif kind == "integer":
            p = {"type": ["integer", "null"]}
        elif kind in ("decimal", "currency", "percent"):
            p = {"type": ["number", "string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
        elif kind == "boolean":
            p = {"type": ["boolean", "null"]}
        elif kind == "date":
            p = {"type": ["string", "null"], "format": "date"}
        elif kind == "datetime":
            p = {"type": ["string", "null"], "format": "date-time"}
        elif kind == "select":
            p = {"enum": [c["value"] for c in f["choices"]] + [None]}
        elif kind == "multiselect":
            p = {"type": ["array", "null"], "items": {"enum": [c["value"] for c in f["choices"]]}}
        elif kind == "geo":
            p = {"type": ["object", "null"], "required": ["lat", "lon"], "additionalProperties": False,
                 "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                                "lon": {"type": "number", "minimum": -180, "maximum": 180}}}
        if "min" in f:
            p["minimum"] = f["min"]
        if "max" in f:
            p["maximum"] = f["max"]
        props[f["name"]] = p
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "additionalProperties": False, "properties": props,
            "required": [f["name"] for f in FIELDS if f.get("required")]}


def build_jsonschema():
    import jsonschema
    schema = _json_schema()
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    def validate(data):
        errors = {}
        for error in validator.iter_errors(data):
            errors.setdefault("/".join(map(str, error.path)) or "_", []).append(error.message)
        return errors
    return validate


def build_marshmallow():
    from marshmallow import RAISE, Schema, ValidationError, fields, validate

    def number(f, **kw):
        rng = validate.Range(min=f.get("min"), max=f.get("max")) if ("min" in f or "max" in f) else None
        return fields.Float(allow_none=True, validate=rng, **kw)

    attrs = {}
    for f in FIELDS:
        kind, req = f["type"], bool(f.get("required"))
        common = {"required": req, "allow_none": not req}
        if kind in ("text", "textarea", "reference", "user", "phone"):
            v = [validate.Length(max=f.get("max_length", 255 if kind == "text" else 65535))]
            if f.get("pattern"):
                v.append(validate.Regexp("^" + f["pattern"] + "$"))
            attrs[f["name"]] = fields.String(validate=v, **common)
        elif kind == "email":
            attrs[f["name"]] = fields.Email(**common)
        elif kind == "url":
            attrs[f["name"]] = fields.Url(schemes={"http", "https"}, **common)
        elif kind == "integer":
            rng = validate.Range(min=f.get("min"), max=f.get("max"))
            attrs[f["name"]] = fields.Integer(strict=True, validate=rng, **common)
        elif kind in ("decimal", "currency", "percent"):
            attrs[f["name"]] = number(f, required=req)
        elif kind == "boolean":
            attrs[f["name"]] = fields.Boolean(**common)
        elif kind == "date":
            attrs[f["name"]] = fields.Date(**common)
        elif kind == "datetime":
            attrs[f["name"]] = fields.AwareDateTime(**common)
        elif kind == "select":
            attrs[f["name"]] = fields.String(validate=validate.OneOf([c["value"] for c in f["choices"]]), **common)
        elif kind == "multiselect":
            attrs[f["name"]] = fields.List(fields.String(validate=validate.OneOf([c["value"] for c in f["choices"]])),
                                           **common)
        elif kind == "geo":
            attrs[f["name"]] = fields.Dict(keys=fields.String(validate=validate.OneOf(["lat", "lon"])),
                                           values=fields.Float(), **common)
    schema = Schema.from_dict(attrs, name="BenchRecordSchema")(unknown=RAISE)

    def validate_(data):
        try:
            return schema.load(data), {}
        except ValidationError as exc:
            return None, exc.messages
    return validate_


# Edge values: the floor must accept, normalise and reject exactly what the engine does, or it
# would be measuring different work. When the engine's rules change, these catch it.
PROBES = [
    ("title", "a\x00b"), ("title", "   "), ("title", None), ("title", "x" * 201), ("notes", "   "), ("notes", " x "),
    ("quantity", "42"), ("quantity", True), ("quantity", 1_000_001), ("headcount", 2 ** 63), ("rank", 0),
    ("amount", 1e20), ("amount", "12.345"), ("amount", -1), ("cost", "abc"), ("cost", "NaN"), ("ratio", 1e-5),
    ("budget", float("inf")), ("discount", 100.5), ("start_date", "2025-1-01"), ("start_date", "20250101"),
    ("start_date", "2025-02-30"), ("start_date", ""), ("due_at", "2025-06-30T18:00:00"), ("due_at", "soon"),
    ("status", "gone"), ("status", ""), ("region", 3), ("tags", ["hot", "nope"]), ("tags", []), ("tags", "hot"),
    ("phone", "12"), ("phone", "+86 (21) 5555-0100ext12"), ("website", "ftp://x.y"), ("website", "https://"),
    ("email", "a@b"), ("email", " a@b.cn "), ("location", {"lat": 91, "lon": 0}), ("location", {"lat": 1}),
    ("parent", "x" * 37), ("code", "abc-1234"), ("postcode", "12345"), ("vip", 1), ("birthday", None),
    ("unknown", 1),
]


def check_same_answers(validator) -> None:
    """Engine and floor agree on the benchmark record and on every probe: values and fields in error."""
    e_values, e_errors = engine_validate(validator, RECORD)
    f_values, f_errors = floor_validate(RECORD)
    assert not e_errors and not f_errors, (e_errors, f_errors)
    assert e_values == f_values, {k: (e_values.get(k), f_values.get(k)) for k in e_values if e_values.get(k) != f_values.get(k)}
    for name, value in PROBES:
        data = {**RECORD, name: value}
        (e_values, e_errors), (f_values, f_errors) = engine_validate(validator, data), floor_validate(data)
        assert (e_values, set(e_errors)) == (f_values, set(f_errors)), (
            f"the hand-written floor no longer matches the engine for {name}={value!r}: "
            f"engine {e_values.get(name)!r} errors {sorted(e_errors)}, floor {f_values.get(name)!r} errors "
            f"{sorted(f_errors)} — update bench/validation.py's floor to the engine's current rules")


def run(args) -> list[Row]:
    validator = build_validator()
    data = RECORD
    # Same answers first: the benchmark is only meaningful if both sides agree.
    check_same_answers(validator)
    bad = {**data, "quantity": "42", "email": "nope", "status": "gone", "extra": 1, "title": None}
    jsonschema_validate, marshmallow_validate = build_jsonschema(), build_marshmallow()
    assert not jsonschema_validate(data), jsonschema_validate(data)
    assert not marshmallow_validate(data)[1], marshmallow_validate(data)[1]

    rounds = 15 if args.quick else 101
    cases = {
        "engine": lambda: engine_validate(validator, data),
        "floor": lambda: floor_validate(data),
        "engine_bad": lambda: engine_validate(validator, bad),
        "floor_bad": lambda: floor_validate(bad),
        "jsonschema": lambda: jsonschema_validate(data),
        "marshmallow": lambda: marshmallow_validate(data),
    }
    s = compare(cases, rounds=rounds, inner=1, min_sample_ns=2_000_000)
    rows = [
        row("validation: 40-field record (valid)", s["engine"], s["floor"], 1.3,
            "RecordValidator.parse + .check vs a hand-written validator (same checks, same normalisation)"),
        row("validation: 40-field record (5 errors)", s["engine_bad"], s["floor_bad"], None,
            "same, on a record with 5 invalid/unknown/missing values; errors collected per field"),
        row("validation: jsonschema (context)", s["jsonschema"], s["floor"], None,
            "Draft 2020-12 validator compiled once, with format checks; DESIGN says ~23×",
            engine_label="jsonschema"),
        row("validation: marshmallow (context)", s["marshmallow"], s["floor"], None,
            "Schema instance built once, unknown=RAISE; DESIGN says ~10×", engine_label="marshmallow"),
    ]
    if args.profile:
        args.profiles.append(profile("validation engine (parse+check, 40 fields)",
                                     lambda: engine_validate(validator, data), 20_000))
    return rows
