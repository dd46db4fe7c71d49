"""The OpenAPI 3 document, generated from the runtime: one schema pair and one path set per entity.

Built once per catalog version (apispec + marshmallow schemas made with ``Schema.from_dict``, which
keeps them out of marshmallow's global class registry) and cached on the app.
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields, validate

from crm_platform import __version__
from crm_platform.engine import Runtime
from crm_platform.metadata.model import EntityDef, FieldDef

from .context import installation

bp = Blueprint("openapi", __name__, url_prefix="/api")


def _choice(f: FieldDef) -> list:
    return [validate.OneOf([c.value for c in f.choices])] if f.choices else []


def _text(f: FieldDef, **kw):
    checks = [validate.Length(max=f.max_length)] if f.max_length else []
    checks += [validate.Regexp(f.pattern)] if f.pattern else []
    return fields.String(validate=checks, **kw)


def _number(f: FieldDef, **kw):
    checks = [validate.Range(min=f.min, max=f.max)] if f.min is not None or f.max is not None else []
    return fields.Float(validate=checks, **kw)


#: contract type name → marshmallow field factory (used only to describe, never to validate records)
FIELD_SCHEMAS = {
    "text": _text, "textarea": _text, "autonumber": _text,
    "email": lambda f, **kw: fields.Email(**kw), "phone": _text, "url": lambda f, **kw: fields.Url(**kw),
    "integer": lambda f, **kw: fields.Integer(strict=True, **kw), "decimal": _number, "currency": _number,
    "percent": _number, "boolean": lambda f, **kw: fields.Boolean(**kw),
    "date": lambda f, **kw: fields.Date(**kw), "datetime": lambda f, **kw: fields.AwareDateTime(**kw),
    "select": lambda f, **kw: fields.String(validate=_choice(f), **kw),
    "multiselect": lambda f, **kw: fields.List(fields.String(validate=_choice(f)), **kw),
    "reference": lambda f, **kw: fields.String(**kw),
    "user": lambda f, **kw: fields.String(**kw),
    "file": lambda f, **kw: fields.String(**kw),
    "geo": lambda f, **kw: fields.Dict(keys=fields.String(validate=validate.OneOf(["lat", "lon"])),
                                       values=fields.Float(), **kw),
    "formula": lambda f, **kw: fields.Raw(**kw),
}


def _field(f: FieldDef, output: bool):
    description = f.label.get("en", f.name)
    if f.type in ("reference", "user", "file"):
        description += f" (id of a {f.target or f.type})"
    return FIELD_SCHEMAS[f.type](f, allow_none=True, dump_only=output and f.readonly,
                                 metadata={"description": description, "x-crm-type": f.type})


def entity_schemas(entity: EntityDef) -> tuple[type[Schema], type[Schema]]:
    writable = {f.name: _field(f, False) for f in entity.fields if not f.readonly}
    if entity.owned:
        writable["owner"] = fields.String(allow_none=True, metadata={"description": "id of the owning user"})
    if entity.staged:
        writable["stage"] = fields.String(validate=validate.OneOf([s.name for s in entity.stages]))
    record = {"id": fields.String(), "version": fields.Integer(), "created_at": fields.AwareDateTime(),
              "updated_at": fields.AwareDateTime(), "created_by": fields.String(allow_none=True),
              "updated_by": fields.String(allow_none=True)}
    if entity.owned:
        record["team"] = fields.String(allow_none=True)
    record |= {f.name: _field(f, True) for f in entity.fields} | {k: v for k, v in writable.items() if k not in record}
    name = "".join(part.title() for part in entity.name.split("_"))
    return (Schema.from_dict(writable, name=f"{name}Input"), Schema.from_dict(record, name=f"{name}Record"))


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def build_spec(runtime: Runtime) -> dict:
    spec = APISpec(title="CRM platform API", version=f"{__version__}+{runtime.version}", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()], info={"description": "Generated from the installed definitions."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}}}})
    spec.path("/api/auth/token", operations={"post": {
        "summary": "Exchange a username and password for a bearer token", "security": [],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["username", "password"],
                        "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}}}},
        "responses": {"200": {"description": "A token", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"token": {"type": "string"}}}}}}, "401": _error("Wrong credentials")}}})
    spec.path("/api/files", operations={"post": {
        "summary": "Upload a file; a file field stores the returned id",
        "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}}}}}},
        "responses": {"201": {"description": "The stored file: id, name, content_type, size, sha256"},
                      "400": _error("No file, empty, or too large")}}})
    spec.path("/api/files/{id}", operations={"get": {
        "summary": "Download a file", "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The file's bytes"}, "404": _error("Not found")}}})
    list_params = [
        {"name": "filter[{field}]", "in": "query", "schema": {"type": "string"},
         "description": "Equality filter; filter[{field}][{op}] with op in eq, ne, lt, lte, gt, gte, in (comma list), "
                        "contains, startswith, isnull (true/false)."},
        {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Search the entity's search fields."},
        {"name": "sort", "in": "query", "schema": {"type": "string"}, "description": "Comma list, '-' for descending."},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "paging.next_cursor of the previous page."},
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}, "description": "Offset paging (slower on deep pages)."},
        {"name": "count", "in": "query", "schema": {"type": "boolean"}, "description": "Include paging.total."},
    ]
    for entity in runtime.catalog.entities.values():
        input_schema, record_schema = entity_schemas(entity)
        spec.components.schema(input_schema.__name__, schema=input_schema)
        spec.components.schema(record_schema.__name__, schema=record_schema)
        ref = {"$ref": f"#/components/schemas/{record_schema.__name__}"}
        body = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{input_schema.__name__}"}}}}
        one = {"description": f"The {entity.name}", "content": {"application/json": {"schema": ref}}}
        tag = [entity.name]
        spec.path(f"/api/records/{entity.name}", operations={
            "get": {"tags": tag, "summary": f"List {entity.name} records", "parameters": list_params,
                    "responses": {"200": {"description": "A page", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"data": {"type": "array", "items": ref},
                                                         "paging": {"type": "object"}}}}}},
                                  "400": _error("Bad filter, sort or paging")}},
            "post": {"tags": tag, "summary": f"Create a {entity.name}", "requestBody": body,
                     "responses": {"201": one, "400": _error("Malformed"), "409": _error("Duplicate"),
                                   "422": _error("Invalid fields (all of them listed)")}}})
        id_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
        spec.path(f"/api/records/{entity.name}/{{id}}", operations={
            "get": {"tags": tag, "parameters": id_param, "responses": {"200": one, "404": _error("Not found")}},
            "patch": {"tags": tag, "parameters": id_param + [{"name": "If-Match", "in": "header", "schema": {"type": "string"},
                                                              "description": "The version read (or \"version\" in the body)"}],
                      "requestBody": body, "responses": {"200": one, "404": _error("Not found"),
                                                         "409": _error("Stale version or duplicate"),
                                                         "422": _error("Invalid fields")}},
            "delete": {"tags": tag, "parameters": id_param, "responses": {"204": {"description": "Deleted"},
                                                                           "409": _error("Still referenced")}}})
        spec.path(f"/api/records/{entity.name}/{{id}}/history", operations={
            "get": {"tags": tag, "parameters": id_param, "responses": {"200": {"description": "Audit entries, oldest first"}}}})
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


@bp.get("/openapi.json")
def openapi_document():
    runtime = installation().runtime
    cache = current_app.extensions.setdefault("crm_openapi", {})
    if runtime.version not in cache:
        cache.clear()
        cache[runtime.version] = build_spec(runtime)
    return jsonify(cache[runtime.version])
