"""JSON Schemas for the OpenAPI document: records as the server returns them, writes as it accepts them,
and the list endpoint's query parameters (every filter the engine's query module accepts). Each
field's schemas come from its type (``engine/fieldtype.py``: ``schema``, ``input_schema``, its
operators' schemas), each system column's from ``engine/system_fields.py``; this module adds what is
OpenAPI's own (3.0's ``nullable``) and what the document says around them. ``web/openapi.py``
assembles the document from these."""

from __future__ import annotations

from crm_platform.engine import Runtime
from crm_platform.engine.fieldtype import ID, STRING
from crm_platform.engine.fieldtypes import TYPES
from crm_platform.engine.query import DEFAULT_LIMIT, MAX_LIMIT, field_type
from crm_platform.engine.runtime import EntityRuntime
from crm_platform.engine.system_fields import SYSTEM_FIELDS, VERSION_MAX
from crm_platform.metadata.model import FieldDef

ERROR = {"$ref": "#/components/schemas/Error"}
#: what the API takes as a version (body "version" or If-Match)
VERSION = {"type": "integer", "minimum": 1, "maximum": VERSION_MAX}


def nullable(schema: dict) -> dict:
    """OpenAPI 3.0 null: ``nullable``, and ``null`` among the values of an enum."""
    if "oneOf" in schema:
        first, *rest = schema["oneOf"]  # null in one branch only, or oneOf would reject it
        return {**schema, "oneOf": [nullable(first), *rest]}
    if "enum" in schema:
        schema = {**schema, "enum": [*schema["enum"], None]}
    return {**schema, "nullable": True}


def _describe(f: FieldDef, schema: dict) -> dict:
    text = f.label.get("en", f.name) + TYPES[f.type].api_note(f)
    if "description" in schema:
        text += f". {schema['description']}"
    return {**schema, "description": text, "x-crm-type": f.type}


def field_output(f: FieldDef) -> dict:
    schema = _describe(f, nullable(TYPES[f.type].schema(f)))
    return {**schema, "readOnly": True} if f.readonly else schema


def field_input(f: FieldDef) -> dict:
    """Required fields are not nullable: sending null for one is a 422 like leaving it out."""
    schema = TYPES[f.type].input_schema(f)
    return _describe(f, schema if f.required else nullable(schema))


# -- record schemas ------------------------------------------------------------------------------
def _hidden_somewhere(runtime: Runtime, er: EntityRuntime) -> set[str]:
    return {name for role in runtime.policies.values() if er.name in role for name in role[er.name].hidden}


def record_schema(runtime: Runtime, er: EntityRuntime) -> dict:
    """A record as the server returns it: every system column and field, null when unset; a field
    hidden from some role is absent from that role's records, so it is not ``required``."""
    entity = er.entity
    properties = {name: _system_output(er, name) for name in entity.system_fields()}
    properties |= {f.name: field_output(f) for f in entity.fields}
    hidden = _hidden_somewhere(runtime, er)
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": [name for name in properties if name not in hidden]}


def _system_output(er: EntityRuntime, name: str) -> dict:
    """A system column's value in a record: null where its column allows it, read-only unless a
    client may write it, one of a list where it is (the stage)."""
    system = SYSTEM_FIELDS[name]
    schema = dict(system.schema)
    choices = system.choices(er.entity)
    if choices:
        schema["enum"] = [c.value for c in choices]
    if not system.writable:
        schema["readOnly"] = True
    return nullable(schema) if er.table.c[name].nullable else schema


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
def filter_parameters(er: EntityRuntime) -> list[dict]:
    """One query parameter per stored field (and system column) and operator form the server accepts,
    each typed by its operator (``engine/fieldtype.py``)."""
    entity, out = er.entity, []
    for name in [*entity.system_fields(), *(f.name for f, _ in er.stored)]:
        if name not in er.table.c:  # geo: stored in two columns, not filterable
            continue
        f, kind = field_type(entity, name)
        for op, operator in kind.operators.items():
            schema = operator.schema(kind, f)
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
