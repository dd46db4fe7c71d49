"""JSON Schemas for the OpenAPI document, per contract field type: values as records carry them,
values as the API accepts them, and the list endpoint's query parameters (every filter the engine's
query module accepts, typed like its field). ``web/openapi.py`` assembles the document from these."""

from __future__ import annotations

import sqlalchemy as sa

from crm_platform.engine import Runtime
from crm_platform.engine.fieldtypes import INT64_MAX, INT64_MIN, NUMERIC_DIGITS, TYPES
from crm_platform.engine.query import DEFAULT_LIMIT, MAX_IN_VALUES, MAX_LIMIT, OPERATORS
from crm_platform.engine.runtime import EntityRuntime
from crm_platform.metadata.model import FieldDef

ERROR = {"$ref": "#/components/schemas/Error"}
STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
DATE, DATETIME = {"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}
ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,36}$"}  # what an id field accepts (ours are UUIDs)
#: what the API takes as a version (body "version" or If-Match)
VERSION = {"type": "integer", "minimum": 1, "maximum": 2 ** 31 - 1}


# -- values by field type ------------------------------------------------------------------------
def _text(f: FieldDef) -> dict:
    schema = {"type": "string", "maxLength": f.max_length or TYPES[f.type].default_length}
    if f.pattern:
        schema["pattern"] = f"^(?:{f.pattern})$"  # the engine full-matches
    return schema


def _places(f: FieldDef) -> int:
    return TYPES[f.type].precision(f)


def _number(f: FieldDef) -> dict:
    """The stored range: the field's min/max, inside what NUMERIC(20, precision) holds."""
    bound = 10 ** (NUMERIC_DIGITS - _places(f))
    schema = {"type": "number"}
    schema |= {"minimum": f.min} if f.min is not None else {"minimum": -bound, "exclusiveMinimum": True}
    schema |= {"maximum": f.max} if f.max is not None else {"maximum": bound, "exclusiveMaximum": True}
    return schema


def _number_input(f: FieldDef) -> dict:
    """JSON numbers, or numeric strings (exact decimals), with at most ``precision`` decimal places."""
    places = _places(f)
    return {"oneOf": [_number(f), {"type": "string", "pattern": NUMERAL}],
            "description": f"At most {places} decimal places (a numeric string is read exactly)."}


#: a numeric string the engine reads (ASCII digits, sign, point, exponent, spaces around)
NUMERAL = r"^[ \t\n\r\f\v]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,9})?[ \t\n\r\f\v]*$"


def _integer(f: FieldDef) -> dict:
    return {"type": "integer", "minimum": f.min if f.min is not None else INT64_MIN,
            "maximum": f.max if f.max is not None else INT64_MAX}


def _choice(f: FieldDef) -> dict:
    return {"type": "string", "enum": [c.value for c in f.choices]}


def _multiselect(f: FieldDef) -> dict:
    return {"type": "array", "items": _choice(f)}


def _geo(f: FieldDef) -> dict:
    return {"type": "object", "required": ["lat", "lon"], "additionalProperties": False,
            "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                           "lon": {"type": "number", "minimum": -180, "maximum": 180}}}


#: a formula's ``result_type`` → the JSON it is returned as
RESULT_TYPES = {"text": STRING, "integer": INTEGER, "decimal": {"type": "number"}, "currency": {"type": "number"},
                "percent": {"type": "number"}, "boolean": BOOLEAN, "date": DATE, "datetime": DATETIME}

#: contract type name → the JSON value of one field (non-null part), as the server returns it
VALUES = {
    "text": _text, "textarea": _text, "email": _text, "phone": _text, "url": _text, "autonumber": _text,
    "integer": _integer, "decimal": _number, "currency": _number, "percent": _number,
    "boolean": lambda f: dict(BOOLEAN), "date": lambda f: dict(DATE), "datetime": lambda f: dict(DATETIME),
    "select": _choice, "multiselect": lambda f: {**_multiselect(f), "minItems": 1, "uniqueItems": True},
    "reference": lambda f: dict(ID), "user": lambda f: dict(ID), "file": lambda f: dict(ID),
    "geo": _geo, "formula": lambda f: dict(RESULT_TYPES[f.result_type or "decimal"]),
}
#: where what the server accepts differs from what it returns
INPUTS = {"decimal": _number_input, "currency": _number_input, "percent": _number_input,
          "multiselect": _multiselect}


def nullable(schema: dict) -> dict:
    """OpenAPI 3.0 null: ``nullable``, and ``null`` among the values of an enum."""
    if "oneOf" in schema:
        first, *rest = schema["oneOf"]  # null in one branch only, or oneOf would reject it
        return {**schema, "oneOf": [nullable(first), *rest]}
    if "enum" in schema:
        schema = {**schema, "enum": [*schema["enum"], None]}
    return {**schema, "nullable": True}


def _describe(f: FieldDef, schema: dict) -> dict:
    text = f.label.get("en", f.name)
    if f.type in ("reference", "user", "file"):
        text += f" (id of a {f.target or f.type})"
    if "description" in schema:
        text += f". {schema['description']}"
    return {**schema, "description": text, "x-crm-type": f.type}


def field_output(f: FieldDef) -> dict:
    schema = _describe(f, nullable(VALUES[f.type](f)))
    return {**schema, "readOnly": True} if f.readonly else schema


def field_input(f: FieldDef) -> dict:
    """Required fields are not nullable: sending null for one is a 422 like leaving it out."""
    schema = INPUTS.get(f.type, VALUES[f.type])(f)
    return _describe(f, schema if f.required else nullable(schema))


# -- record schemas ------------------------------------------------------------------------------
def _hidden_somewhere(runtime: Runtime, er: EntityRuntime) -> set[str]:
    return {name for role in runtime.policies.values() if er.name in role for name in role[er.name].hidden}


def record_schema(runtime: Runtime, er: EntityRuntime) -> dict:
    """A record as the server returns it: every system column and field, null when unset; a field
    hidden from some role is absent from that role's records, so it is not ``required``."""
    entity = er.entity
    system = {"id": {"type": "string", "readOnly": True},
              "version": {"type": "integer", "minimum": 1, "readOnly": True},
              "owner": nullable({**ID, "description": "id of the owning user; null: in the public pool"}),
              "team": nullable({"type": "string", "readOnly": True, "description": "the owner's team"}),
              "stage": {"type": "string", "enum": [s.name for s in entity.stages]},
              "created_at": {**DATETIME, "readOnly": True}, "updated_at": {**DATETIME, "readOnly": True},
              "created_by": nullable({"type": "string", "readOnly": True}),
              "updated_by": nullable({"type": "string", "readOnly": True})}
    properties = {name: system[name] for name in entity.system_fields()}
    properties |= {f.name: field_output(f) for f in entity.fields}
    hidden = _hidden_somewhere(runtime, er)
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": [name for name in properties if name not in hidden]}


def _writable(er: EntityRuntime, creating: bool) -> dict[str, dict]:
    """The fields a write may send. ``stage``: a stage set only by an operation (a lead's conversion)
    is never written directly, and a new record starts in an entry stage (others: 422)."""
    entity = er.entity
    properties = {f.name: field_input(f) for f in entity.fields if f.name in er.validator.checks}
    if entity.owned:
        owner = {**ID, "description": "id of the owning user (default: the caller)"
                                      + ("; null: the public pool" if entity.pooled else "")}
        properties["owner"] = nullable(owner) if entity.pooled else owner
    if entity.staged:
        allowed = [s.name for s in entity.stages if not s.set_by and (not creating or s.name in entity.entry_stages)]
        properties["stage"] = {"type": "string", "enum": allowed,
                               **({"description": f"default: {entity.first_stage}"} if creating else {})}
    return properties


def create_schema(er: EntityRuntime) -> dict:
    """Required: the required fields without a default (``required_if`` is checked on the record)."""
    required = [f.name for f in er.entity.fields if f.name in er.validator.required
                and f.default is None and f.default_expr is None]
    return {"type": "object", "additionalProperties": False, "properties": _writable(er, creating=True),
            **({"required": required} if required else {})}


def update_schema(er: EntityRuntime) -> dict:
    version = {**VERSION, "description": "The version read (or send it as If-Match)."}
    return {"type": "object", "additionalProperties": False, "properties": {"version": version, **_writable(er, creating=False)}}


# -- list queries --------------------------------------------------------------------------------
_SYSTEM_QUERY = {"id": STRING, "owner": STRING, "team": STRING, "stage": STRING, "created_by": STRING,
                 "updated_by": STRING, "created_at": DATETIME, "updated_at": DATETIME,
                 "version": {"type": "integer", "minimum": 0, "maximum": 2 ** 31 - 1}}  # an INTEGER column


def _filter_value(f: FieldDef | None, name: str) -> dict:
    """What ``parse_query`` accepts for a field: its value, as text (field ranges do not apply to
    integers; numbers are checked like a field value)."""
    if f is None:
        return dict(_SYSTEM_QUERY[name])
    if f.type == "integer":
        return {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
    return {k: v for k, v in INPUTS.get(f.type, VALUES[f.type])(f).items() if k != "description"} \
        if f.type != "multiselect" else _choice(f)


def _operators(er: EntityRuntime, name: str) -> tuple[str, ...]:
    """The operators ``filter_clause`` accepts on a column, by its type."""
    if er.entity.has_field(name) and er.entity.field(name).type == "multiselect":
        return ("contains", "isnull")
    column = er.table.c[name]
    texty, boolean = isinstance(column.type, sa.String), isinstance(column.type, sa.Boolean)
    return tuple(op for op in OPERATORS if not (op in ("contains", "startswith") and not texty)
                 and not (op in ("lt", "lte", "gt", "gte") and boolean))


def filter_parameters(er: EntityRuntime) -> list[dict]:
    """One query parameter per stored field (and system column) and operator form the server accepts."""
    entity, out = er.entity, []
    for name in [*entity.system_fields(), *(f.name for f, _ in er.stored)]:
        if name not in er.table.c:  # geo: stored in two columns, not filterable
            continue
        f = entity.field(name) if entity.has_field(name) else None
        value = _filter_value(f, name)
        for op in _operators(er, name):
            schema = {"isnull": BOOLEAN, "contains": STRING, "startswith": STRING}.get(op, value)
            if op == "in":
                schema = {"type": "string", "description": f"comma-separated values (at most {MAX_IN_VALUES})"}
            if f is not None and f.type == "multiselect" and op == "contains":
                schema = _choice(f)
            out.append({"name": f"filter[{name}][{op}]", "in": "query", "schema": schema,
                        "description": _OP_TEXT[op].format(name=name)})
            if op == "eq":
                out.append({"name": f"filter[{name}]", "in": "query", "schema": schema,
                            "description": f"Same as filter[{name}][eq]."})
    return out


_OP_TEXT = {"eq": "{name} equals", "ne": "{name} differs", "lt": "{name} is less than", "lte": "{name} is at most",
            "gt": "{name} is greater than", "gte": "{name} is at least", "in": "{name} is one of (comma list)",
            "contains": "{name} contains (case-insensitive)", "startswith": "{name} starts with (case-insensitive)",
            "isnull": "{name} is unset (true) or set (false)"}


def sort_names(er: EntityRuntime) -> list[str]:
    entity = er.entity
    names = [n for n in entity.system_fields()]
    names += [f.name for f, kind in er.stored if kind.sortable and f.name in er.table.c]
    return names


def list_parameters(er: EntityRuntime, max_page: int | None) -> list[dict]:
    keys = "|".join(sort_names(er))
    page = {"type": "integer", "minimum": 1, **({"maximum": max_page} if max_page else {})}
    return [*filter_parameters(er),
            {"name": "q", "in": "query", "schema": STRING,
             "description": f"Search {', '.join(er.entity.search_fields) or 'nothing'} (case-insensitive)."},
            {"name": "sort", "in": "query", "description": "Comma list of keys, '-' for descending.",
             "schema": {"type": "string", "pattern": f"^-?({keys})(,-?({keys}))*$"}},
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
            {"name": "cursor", "in": "query", "schema": STRING,
             "description": "paging.next_cursor of the previous page (not with page)."},
            {"name": "page", "in": "query", "schema": page, "description": "Offset paging (slower on deep pages)."},
            {"name": "count", "in": "query", "schema": COUNT, "description": "Include paging.total."}]


#: what ``count`` may be (in any case; anything else is a 400)
COUNT = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}


# -- responses ----------------------------------------------------------------------------------
