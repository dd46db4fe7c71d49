"""The OpenAPI 3.0 document, generated from the runtime: what the server answers, exactly.

Built once per catalog version and cached on the app (``openapi_document``). The schemas are plain
JSON Schema written from the field-type registry below (one entry per contract type name, input and
output side), not marshmallow: a marshmallow field cannot say "a number, or a numeric string", a
nullable enum, or a formula's result type, and the document has to say exactly what the engine does.
``tests/conformance/test_schemathesis.py`` holds the server to it (no 5xx, every status and every
body documented) on SQLite and PostgreSQL, as an admin and as a rep.

The document is the same for every caller: a field hidden from some role is still a field of its
entity (records of that role simply lack it, so such fields are never ``required`` in a record).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, current_app

from crm_platform import __version__
from crm_platform.engine import Runtime
from crm_platform.engine.fieldtypes import INT64_MAX, INT64_MIN, NUMERIC_DIGITS, TYPES
from crm_platform.engine.query import DEFAULT_LIMIT, MAX_FILTERS, MAX_IN_VALUES, MAX_LIMIT, MAX_PAGE, OPERATORS
from crm_platform.engine.runtime import EntityRuntime
from crm_platform.metadata.model import ACTIONS, FieldDef

from .context import installation

bp = Blueprint("openapi", __name__, url_prefix="/api")

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
ERROR_SCHEMA = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "request_id"], "additionalProperties": False,
        "properties": {
            "code": {"type": "string", "description": "stable, e.g. validation, stale_version, duplicate"},
            "message": {"type": "string", "description": "in the caller's language"},
            "fields": {"type": "object", "additionalProperties": {"type": "array", "items": STRING},
                       "description": "field → its messages (422, and 403 naming fields not writable)"},
            "existing_id": {"type": "string", "description": "the record a duplicate matches (409), if visible"},
            "request_id": {"type": "string", "description": "the id of this request in the server's log"}}}}}

#: status → what it means, for the operations that can answer it
_STATUS_TEXT = {400: "Malformed: the body, a query parameter, a header or the URL",
                401: "No valid bearer token", 403: "Not allowed (for 403 on fields: `fields` names them)",
                404: "Absent, or not visible to the caller", 409: "Conflict: stale version, duplicate, or in use",
                413: "The body is too large", 422: "Invalid fields, all of them listed in `fields`",
                429: "Too many attempts: try again later"}


def responses(ok: dict, *statuses: int, auth: bool = True) -> dict:
    """The success responses plus the error statuses (400 always: a NUL in the URL is refused everywhere)."""
    codes = sorted({400, *statuses} | ({401} if auth else set()))
    return {**ok, **{str(code): {"description": _STATUS_TEXT[code],
                                 "content": {"application/json": {"schema": ERROR}}} for code in codes}}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}},
            **({"headers": headers} if headers else {})}


def _body(schema: dict, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _obj(required: list[str], **properties) -> dict:
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


ETAG = {"ETag": {"description": "The record's version, for If-Match", "schema": STRING}}
ETAG_DESCRIPTION = {"ETag": {"description": "Changes with the catalog version and the caller's role", "schema": STRING}}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
            "description": 'The version read: 3, "3" or W/"3" (or "version" in the body)',
            "schema": {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,10}"?$'}}
ME = _obj(["id", "username", "role", "team"], id=STRING, username=STRING, role=STRING, team=nullable(STRING))
STORED_FILE = _obj(["id", "name", "content_type", "size", "sha256"], id=STRING, name=STRING, content_type=STRING,
                   size={"type": "integer", "minimum": 1}, sha256=STRING)
AUDIT_ENTRY = _obj(["id", "version", "action", "at", "by", "changes"], id=INTEGER, version=INTEGER,
                   action={"type": "string", "enum": ["create", "update", "delete", "claim", "release", "assign"]},
                   at=DATETIME, by=_obj(["id", "username"], id=nullable(STRING), username=nullable(STRING)),
                   changes={"type": "array", "items": _obj(["field", "old", "new"], field=STRING, old={}, new={})})
PAGING = _obj(["limit", "has_more", "next_cursor"], limit=INTEGER, has_more=BOOLEAN, next_cursor=nullable(STRING),
              page=INTEGER, total=INTEGER)
DESCRIBED_FIELD = {"type": "object", "required": ["name", "type", "label", "required", "readonly"],
                   "properties": {"name": STRING, "type": {"type": "string", "enum": sorted(TYPES)},
                                  "label": {"type": "object", "additionalProperties": STRING},
                                  "required": BOOLEAN, "readonly": BOOLEAN}}
DESCRIBED_ENTITY = {"type": "object", "required": ["name", "label", "fields", "stages", "forms"],
                    "properties": {"name": STRING, "label": {"type": "object", "additionalProperties": STRING},
                                   "fields": {"type": "array", "items": DESCRIBED_FIELD},
                                   "stages": {"type": "array", "items": {"type": "object"}},
                                   "forms": {"type": "array", "items": {"type": "object"}}}}


def _path_param(name: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string", "minLength": 1}}


def _query(name: str, schema: dict, required: bool = False, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            **({"description": description} if description else {})}


def platform_paths(runtime: Runtime) -> dict:
    """Everything but the records: tokens, the caller, files, metadata, explain, this document, /login."""
    entity_names = {"type": "string", "enum": sorted(runtime.entities)}
    credentials = _obj(["username", "password"], username=STRING, password=STRING)
    return {
        "/api/auth/token": {"post": {
            "tags": ["auth"], "summary": "Exchange a username and password for a bearer token", "security": [],
            "requestBody": _body(credentials),
            "responses": responses({"200": _json(_obj(["token"], token=STRING), "A token")}, 401, 413, 429,
                                   auth=False)}},
        "/api/auth/revoke": {"post": {
            "tags": ["auth"], "summary": "Revoke the bearer token this request carries",
            "responses": responses({"204": {"description": "Revoked"}})}},
        "/api/me": {"get": {"tags": ["auth"], "summary": "The caller",
                            "responses": responses({"200": _json(ME, "The caller")})}},
        "/api/files": {"post": {
            "tags": ["files"], "summary": "Upload a file; a file field stores the returned id",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _obj(
                ["file"], file={"type": "string", "format": "binary"})}}},
            "responses": responses({"201": _json(STORED_FILE, "The stored file")}, 413)}},
        "/api/files/{id}": {"get": {
            "tags": ["files"], "summary": "Download a file (its uploader, or who can read a record holding it)",
            "parameters": [_path_param("id")],
            "responses": responses({"200": {"description": "The file's bytes, with its content type",
                                            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}},
                                   404)}},
        "/api/meta/entities": {"get": {
            "tags": ["meta"], "summary": "The entities the caller may see",
            "responses": responses({"200": _json(_obj(["data", "version"], version=STRING, data={
                "type": "array", "items": _obj(["name", "label"], name=STRING, label={
                    "type": "object", "additionalProperties": STRING})}), "Entities")})}},
        "/api/meta/entities/{entity}": {"get": {
            "tags": ["meta"], "summary": "An entity as the caller may see it (hidden fields absent)",
            "parameters": [_path_param("entity", entity_names),
                           {"name": "If-None-Match", "in": "header", "required": False, "schema": STRING,
                            "description": "The ETag of a copy the client holds"}],
            "responses": responses({"200": _json(DESCRIBED_ENTITY, "The entity", ETAG_DESCRIPTION),
                                    "304": {"description": "Not modified (If-None-Match)",
                                            "headers": ETAG_DESCRIPTION}}, 404)}},
        "/api/permissions/explain": {"get": {
            "tags": ["permissions"], "summary": "May a user do something, and why",
            "parameters": [_query("entity", entity_names, True),
                           _query("action", {"type": "string", "enum": list(ACTIONS)}, True),
                           _query("user", STRING, description="username or id (default: the caller)"),
                           _query("id", STRING, description="a record the caller can read"),
                           _query("field", STRING, description="a field of the entity")],
            "responses": responses({"200": _json(_obj(
                ["user", "entity", "action", "id", "field", "allowed", "reasons"], user=STRING, entity=STRING,
                action=STRING, id=nullable(STRING), field=nullable(STRING), allowed=BOOLEAN,
                reasons={"type": "array", "items": STRING}), "The answer")}, 403, 404)}},
        "/api/openapi.json": {"get": {"tags": ["meta"], "summary": "This document", "security": [],
                                      "responses": responses({"200": _json({"type": "object"}, "OpenAPI 3.0")},
                                                             auth=False)}},
        "/login": {"get": {"tags": ["browser"], "summary": "The login page (HTML)", "security": [],
                           "responses": {"200": {"description": "The login form",
                                                 "content": {"text/html": {"schema": STRING}}}}},
                   "post": {"tags": ["browser"], "summary": "Log in (HTML form with its CSRF token)",
                            "security": [], "requestBody": {"required": True, "content": {
                                "application/x-www-form-urlencoded": {"schema": _obj(
                                    ["username", "password", "csrf_token"], username=STRING, password=STRING,
                                    csrf_token=STRING)}}},
                            "responses": {"302": {"description": "Logged in: to the next page"}, **{
                                str(code): {"description": _STATUS_TEXT[code] + " (the form again)",
                                            "content": {"text/html": {"schema": STRING}}}
                                for code in (400, 401, 413, 429)}}}},
    }


def record_paths(er: EntityRuntime, name: str, list_params: list[dict]) -> dict:
    entity, tag = er.entity, [er.name]
    record = {"$ref": f"#/components/schemas/{name}Record"}
    one = _json(record, f"The {er.name}", ETAG)
    rid = [_path_param("id")]
    base = f"/api/records/{er.name}"
    out = {
        base: {
            "get": {"tags": tag, "summary": f"List {er.name} records", "parameters": list_params,
                    "description": f"At most {MAX_FILTERS} filters, {MAX_IN_VALUES} values in one `in`; "
                                   "comparisons (lt, lte, gt, gte) need a value. Hidden fields filter and sort "
                                   "like unknown ones (400).",
                    "responses": responses({"200": _json(_obj(["data", "paging"], data={
                        "type": "array", "items": record}, paging=PAGING), "A page")}, 404)},
            "post": {"tags": tag, "summary": f"Create a {er.name}",
                     "requestBody": _body({"$ref": f"#/components/schemas/{name}Create"}),
                     "responses": responses({"201": _json(record, f"The new {er.name}", {
                         **ETAG, "Location": {"schema": STRING}})}, 403, 404, 409, 413, 422)}},
        f"{base}/{{id}}": {
            "get": {"tags": tag, "parameters": rid, "responses": responses({"200": one}, 404)},
            "patch": {"tags": tag, "parameters": [*rid, IF_MATCH],
                      "requestBody": _body({"$ref": f"#/components/schemas/{name}Update"}),
                      "responses": responses({"200": one}, 403, 404, 409, 413, 422)},
            "delete": {"tags": tag, "parameters": [*rid, IF_MATCH],
                       "description": "Optionally names the version read (If-Match or a JSON body); 409 if stale.",
                       "requestBody": _body({"type": "object", "properties": {"version": VERSION}}, required=False),
                       "responses": responses({"204": {"description": "Deleted"}}, 403, 404, 409, 413)}},
        f"{base}/{{id}}/history": {"get": {
            "tags": tag, "parameters": rid, "summary": "Audit entries, oldest first",
            "responses": responses({"200": _json(_obj(["data"], data={"type": "array", "items": AUDIT_ENTRY}),
                                                 "Audit entries")}, 404)}},
    }
    if entity.pooled:
        out[f"{base}/{{id}}/claim"] = {"post": {
            "tags": tag, "parameters": rid, "summary": "Take it from the public pool",
            "responses": responses({"200": one}, 403, 404, 409)}}
        out[f"{base}/{{id}}/release"] = {"post": {
            "tags": tag, "parameters": rid, "summary": "Put it back into the public pool",
            "responses": responses({"200": one}, 403, 404, 409)}}
    if entity.owned:
        owner = {**ID, **({"nullable": True} if entity.pooled else {}),
                 "description": "a user id" + ("; null: the public pool" if entity.pooled else "")}
        out[f"{base}/{{id}}/assign"] = {"post": {
            "tags": tag, "parameters": rid, "summary": "Give it to another user",
            "requestBody": _body(_obj(["owner"], owner=owner)),
            "responses": responses({"200": one}, 403, 404, 409, 413)}}
    return out


# -- the document --------------------------------------------------------------------------------
def build_spec(runtime: Runtime) -> dict:
    document = {
        "openapi": "3.0.3",
        "info": {"title": "CRM platform API", "version": f"{__version__}+{runtime.version}",
                 "description": "Generated from the installed definitions. Errors are "
                                '`{"error": {"code", "message", "request_id", "fields"?, "existing_id"?}}`.'},
        "security": [{"bearer": []}],
        "paths": {},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": {"Error": ERROR_SCHEMA}},
    }
    schemas, all_paths = document["components"]["schemas"], document["paths"]
    all_paths |= platform_paths(runtime)
    for er in runtime.entities.values():
        name = "".join(part.title() for part in er.name.split("_"))
        schemas[f"{name}Record"] = record_schema(runtime, er)
        schemas[f"{name}Create"] = create_schema(er)
        schemas[f"{name}Update"] = update_schema(er)
        all_paths |= record_paths(er, name, list_parameters(er, MAX_PAGE))
    return document


@bp.get("/openapi.json")
def openapi_document():
    """Built and encoded once per catalog version (it is half a megabyte for the base pack)."""
    runtime = installation().runtime
    cache = current_app.extensions.setdefault("crm_openapi", {})
    if runtime.version not in cache:
        cache.clear()
        cache[runtime.version] = current_app.json.dumps(build_spec(runtime)).encode()
    return Response(cache[runtime.version], mimetype="application/json")
