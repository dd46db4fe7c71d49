"""The OpenAPI 3.0 document, generated from the runtime: what the server answers, exactly.

Built once per catalog version and cached on the app (``openapi_document``). The schemas are plain
JSON Schema that each field's type writes (``engine/fieldtype.py``: the values it returns, accepts and
filters by; ``openapi_schemas.py`` puts them together), not marshmallow: a marshmallow field cannot say
"a number, or a numeric string", a nullable enum, or a formula's result type, and the document has to
say exactly what the engine does.
``tests/conformance/test_schemathesis.py`` holds the server to it (no 5xx, every status and every
body documented) on SQLite and PostgreSQL, as an admin and as a rep.

The document is the same for every caller: a field hidden from some role is still a field of its
entity (records of that role simply lack it, so such fields are never ``required`` in a record).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from crm_platform import __version__
from crm_platform.engine import Runtime
from crm_platform.engine.fieldtype import (
    BOOLEAN,
    DATETIME,
    ID,
    INTEGER,
    MAX_IN_VALUES,
    STRING,
)
from crm_platform.engine.fieldtypes import TYPES
from crm_platform.engine.query import MAX_FILTERS, MAX_PAGE
from crm_platform.engine.runtime import EntityRuntime
from crm_platform.metadata.model import ACTIONS

from .context import installation
from .openapi_schemas import (
    ERROR,
    VERSION,
    create_schema,
    list_parameters,
    nullable,
    record_schema,
    update_schema,
)

bp = Blueprint("openapi", __name__, url_prefix="/api")


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
