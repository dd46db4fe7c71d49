"""The JSON description of an entity for clients (``GET /api/meta/entities/{entity}``)."""

from __future__ import annotations

import hashlib

from crm_platform.engine.system_fields import SYSTEM_FIELDS
from crm_platform.metadata.model import Choice, EntityDef, FieldDef, Form, Section

_OPTIONAL = ("help", "min", "max", "max_length", "pattern", "precision", "currency", "target", "depends_on",
             "default", "result_type", "format", "lookup", "fetch_from")
_EXPRESSIONS = ("required_if", "readonly_if", "visible_if")


def describe_field(f: FieldDef, readonly: bool = False) -> dict:
    out = {"name": f.name, "type": f.type, "label": dict(f.label), "required": f.required,
           "readonly": f.readonly or readonly}
    for key in _OPTIONAL:
        value = getattr(f, key)
        if value is not None:
            out[key] = dict(value) if key == "help" else value
    if f.choices:
        out["choices"] = _choices(f.choices)
    for key in _EXPRESSIONS:
        expression = getattr(f, key)
        if expression is not None:
            out[key] = expression.source
    if f.default_expr is not None:
        out["default_expr"] = f.default_expr.source
    if f.expression is not None:
        out["expression"] = f.expression.source
    if f.unique:
        out["unique"] = True
    if f.type == "reference" and f.stored:
        out["on_delete"] = f.on_delete
        if f.detail:
            out["detail"] = True
    if f.rollup is not None:
        r = f.rollup
        out["rollup"] = {"entity": r.entity, "via": r.via, "function": r.function,
                         **({"field": r.field} if r.field else {}), **({"where": r.where.source} if r.where else {})}
    return out


def _choices(choices: tuple[Choice, ...]) -> list[dict]:
    return [{"value": c.value, "label": dict(c.label), **({"color": c.color} if c.color else {}),
             **({"when": list(c.when)} if c.when else {})} for c in choices]


def describe_system_field(entity: EntityDef, name: str) -> dict:
    system = SYSTEM_FIELDS[name]
    out = {"name": name, "type": system.type, "label": system.label, "required": False,
           "readonly": not system.writable, "system": True}
    choices = system.choices(entity)
    if choices:
        out["choices"] = _choices(choices)
    return out


def _section(section: Section, hidden: frozenset[str]) -> dict:
    out = {"columns": [[n for n in c if n not in hidden] for c in section.columns]}
    if section.name:
        out["name"] = section.name
    if section.label:
        out["label"] = dict(section.label)
    if section.visible_if is not None:
        out["visible_if"] = section.visible_if.source
    return out


def describe_form(form: Form, hidden: frozenset[str] = frozenset()) -> dict:
    return {"name": form.name, **({"label": dict(form.label)} if form.label else {}),
            "tabs": [{**({"label": dict(t.label)} if t.label else {}),
                      "sections": [_section(s, hidden) for s in t.sections]} for t in form.tabs],
            "related": [{"entity": r.entity, "field": r.field, "columns": list(r.columns),
                         **({"label": dict(r.label)} if r.label else {})} for r in form.related]}


def describe_entity(entity: EntityDef, hidden: frozenset[str] = frozenset(),
                    readonly: frozenset[str] = frozenset(), actions: dict | None = None) -> dict:
    """The entity as one caller may see it: ``hidden`` fields are absent everywhere (fields, forms,
    list views, kanban cards, search fields); ``readonly`` fields are marked read-only."""
    fields = [describe_field(f, f.name in readonly) for f in entity.fields if f.name not in hidden]
    fields += [describe_system_field(entity, n) for n in entity.system_fields()]

    def visible(names):
        return [n for n in names if n.lstrip("-") not in hidden]

    return {
        "name": entity.name, "label": dict(entity.label),
        "plural_label": dict(entity.plural_label or entity.label),
        "icon": entity.icon, "owned": entity.owned, "pooled": entity.pooled, "title": entity.title,
        "search_fields": visible(entity.search_fields), "default_sort": visible(entity.default_sort),
        "actions": actions or {},
        "fields": fields,
        "stages": [{"name": s.name, "label": dict(s.label), "probability": s.probability, "category": s.category,
                    "entry": s.name in entity.entry_stages, "set_by": list(s.set_by), "roles": list(s.roles),
                    "transitions": list(s.transitions) if s.transitions is not None else None,
                    "gate": {"required": list(s.gate.required),
                             "condition": s.gate.condition.source if s.gate.condition else None} if s.gate else None}
                   for s in entity.stages],
        "forms": [describe_form(f, hidden) for f in entity.forms.values()],
        "list_views": [{"name": v.name, "columns": visible(v.columns), "sort": visible(v.sort),
                        "filters": {k: v for k, v in v.filters.items() if k not in hidden},
                        "group_by": v.group_by if v.group_by not in hidden else None,
                        **({"label": dict(v.label)} if v.label else {})} for v in entity.list_views.values()],
        "kanban": {"field": entity.kanban.field, "card_fields": visible(entity.kanban.card_fields)}
        if entity.kanban else None,
        "duplicate_rules": [{"name": r.name, "fields": list(r.fields), "action": r.action}
                            for r in entity.duplicate_rules if not set(r.fields) & hidden],
        "validation_rules": [{"name": r.name, "condition": r.condition.source, "fields": list(r.fields),
                              "message": dict(r.message)} for r in entity.validation_rules
                             if not (set(r.fields) | r.condition.names) & hidden],
        "probability_field": entity.probability_field if entity.probability_field not in hidden else None,
        "parent": entity.parent.name if entity.parent is not None else None,
    }


class DescriptionCache:
    """Encoded descriptions, built once per (catalog version, role, entity) and then served as bytes.

    A description depends only on the catalog and the caller's role (hidden and read-only fields,
    the role's scopes); labels carry every locale, so the language does not change it. Entries of an
    older catalog version are dropped when the first request of a new version arrives. One lives on
    each app (``app.extensions``), never in a module global.
    """

    def __init__(self) -> None:
        self.version: str | None = None
        self.entries: dict[tuple[str, str, str], tuple[bytes, str]] = {}

    def get(self, version: str, role: str, entity: str, build) -> tuple[bytes, str]:
        """``(body, etag)``: the cached entry, or ``build()`` (the encoded JSON bytes) stored first."""
        if version != self.version:
            self.entries, self.version = {}, version
        key = (version, role, entity)
        entry = self.entries.get(key)
        if entry is None:
            body = build()
            entry = self.entries[key] = (body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        return entry
