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
import tempfile
from decimal import Decimal
from pathlib import Path

from .common import Row, compare, profile, row

from .validation_floor import floor_validate
from .validation_record import ENTITY, FIELDS, RECORD


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
    # Exact amounts: what the JSON parser gives (Decimal), floats from Python callers, and the edges.
    ("amount", Decimal("12345678901234.56")), ("amount", Decimal("1E+999999")), ("amount", Decimal("1E-999999")),
    ("amount", Decimal("1.10")), ("amount", Decimal("-0.00")), ("amount", 10 ** 400), ("amount", "1_000"),
    ("amount", "Infinity"), ("amount", " 7 "), ("ratio", Decimal("0.43750")), ("weight", 0.1),
    ("budget", Decimal("-999999999999999999.99")), ("budget", Decimal("-1E+18")), ("discount", Decimal("100.00")),
    ("discount", Decimal("100.01")), ("probability", [1]), ("location", {"lat": Decimal("91"), "lon": 0}),
    ("location", {"lat": Decimal("NaN"), "lon": 0}),
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
