"""From merged raw documents to the frozen model, checking everything a schema cannot.

Each ``build_*`` function appends :class:`Problem` s instead of raising, so one load reports every
problem at once: unknown reference targets, fields named in layouts that do not exist, expressions
that do not parse or read unknown names, stages that do not exist.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable

from .errors import ExpressionError, Problem
from .expressions import Expression, compile_expression
from .loader import ORIGIN
from .model import (
    FALLBACK_LOCALE,
    RESERVED_NAMES,
    STAGE_ACTIONS,
    SYSTEM_FIELDS,
    Choice,
    DuplicateRule,
    EntityDef,
    EntityGrant,
    FieldDef,
    Form,
    Gate,
    Kanban,
    ListView,
    RelatedList,
    RoleDef,
    Section,
    SharingRule,
    Stage,
    Tab,
    frozen_map,
)
from .paths import PathIndex
from .spanning import (
    NUMERIC_TYPES,
    TEXT_TYPES,
    build_rollup,
    build_validation_rules,
    check_details,
    check_fetch,
    check_reference_options,
    formula_order,
    lookup_options,
)

__all__ = ["NUMERIC_TYPES", "TEXT_TYPES", "build_entity", "build_role"]


class Reporter:
    """Collects problems for one document, turning relative pointers into full ones."""

    def __init__(self, problems: list[Problem], origin: tuple[str, str]):
        self.problems, self.file, self.base = problems, origin[0], origin[1]

    def at(self, origin: tuple[str, str]) -> Reporter:
        return Reporter(self.problems, origin)

    def __call__(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(self.file, self.base + pointer, message))

    def expression(self, source: str | None, pointer: str, names: Iterable[str],
                   numeric: Iterable[str] = ()) -> Expression | None:
        if source is None:
            return None
        try:
            return compile_expression(source, frozenset(names), numeric_names=frozenset(numeric))
        except ExpressionError as exc:
            self(pointer, f"expression {source!r}: {exc}")
            return None


def _label(doc: dict, report: Reporter, pointer: str = "") -> dict:
    """The merged label, which needs 'en' (an overlay may give one locale; the base gives the rest)."""
    if "label" not in doc:
        report(pointer + "/label", "a label is required (at least 'en')")
        return {"en": doc.get("name") or doc.get("value") or "?"}
    if "en" not in doc["label"]:
        report(pointer + "/label", "the label needs an 'en' text")
    return frozen_map(doc["label"])


def _message(doc: dict, report: Reporter, pointer: str):
    """A per-locale text shown when a rule fires: it needs the fallback locale's text, or some caller
    would get no message at all."""
    value = doc.get("message")
    if value is not None and FALLBACK_LOCALE not in value:
        report(pointer, f"the message needs an '{FALLBACK_LOCALE}' text (the fallback for other languages)")
    return frozen_map(value) if value is not None else None


def _stage_actions(stage: dict, report: Reporter) -> tuple[str, ...]:
    set_by = stage.get("set_by", [])
    for i, action in enumerate(set_by):
        if action not in STAGE_ACTIONS:
            hint = difflib.get_close_matches(action, STAGE_ACTIONS, n=1)
            suffix = f"did you mean '{hint[0]}'?" if hint else f"known: {', '.join(STAGE_ACTIONS)}"
            report(f"/set_by/{i}", f"unknown action {action!r} ({suffix})")
    if set_by and stage.get("entry"):
        report("/entry", "a stage only an action may set cannot be an entry stage")
    return tuple(set_by)


def _opt(doc: dict, key: str):
    value = doc.get(key)
    return frozen_map(value) if isinstance(value, dict) else value


def build_field(doc: dict, entity: dict, report: Reporter, names: set[str], numeric: set[str],
                entity_names: Iterable[str], scope: _Scope) -> FieldDef | None:
    name, kind = doc["name"], doc.get("type")
    if "lookup" in doc:  # options that come with the value read: choices, precision, currency, target
        doc = {**lookup_options(doc, entity["name"], scope.paths, report), **doc}
    if name in RESERVED_NAMES:
        report("/name", f"'{name}' is a reserved name (system field)")
    if kind is None:
        report("/type", "a type is required")
        return None
    label = _label(doc, report)
    if kind == "reference" and doc.get("target") not in entity_names:
        report("/target", f"unknown reference target {doc.get('target')!r}" if "target" in doc
               else "a reference field needs a 'target' entity")
    if kind in ("select", "multiselect") and not doc.get("choices") and "lookup" not in doc:
        report("/choices", f"a {kind} field needs choices")
    if kind == "formula" and "expression" not in doc:
        report("/expression", "a formula field needs an expression")
    if "min" in doc and "max" in doc and doc["min"] > doc["max"]:
        report("/min", f"min {doc['min']} is greater than max {doc['max']}")
    if "pattern" in doc:
        try:
            re.compile(doc["pattern"])
        except re.error as exc:
            report("/pattern", f"invalid regular expression: {exc}")
    for i, choice in enumerate(doc.get("choices", [])):
        if "label" in choice and "en" not in choice["label"]:
            report(f"/choices/{i}/label", "the label needs an 'en' text")
    values = [c["value"] for c in doc.get("choices", [])]
    if len(values) != len(set(values)):
        report("/choices", "choice values must be unique")
    if "depends_on" in doc:
        parent = next((f for f in entity.get("fields", []) if f["name"] == doc["depends_on"]), None)
        if parent is None or parent.get("type") != "select":
            report("/depends_on", f"depends_on must name a select field of this entity, not {doc['depends_on']!r}")
        else:
            allowed = {c["value"] for c in parent.get("choices", [])}
            for i, choice in enumerate(doc.get("choices", [])):
                for value in set(choice.get("when", [])) - allowed:
                    report(f"/choices/{i}/when", f"{value!r} is not a choice of '{parent['name']}'")
    if "fetch_from" in doc:
        check_fetch(doc, entity["name"], scope.paths, report)
    detail, on_delete = check_reference_options(doc, entity, report)
    rollup = build_rollup(doc, entity["name"], scope.entities, report, scope.rollup_where(report)) \
        if "rollup" in doc else None
    computed = {f["name"] for f in entity.get("fields", []) if f.get("type") == "formula" or "lookup" in f}
    stored = (names - computed) | scope.path_names
    everything = names | scope.path_names
    numeric = numeric | scope.path_numeric
    return FieldDef(
        name=name, type=kind, label=label, help=_opt(doc, "help"), required=doc.get("required", False) or detail,
        default=doc.get("default"), default_expr=report.expression(doc.get("default_expr"), "/default_expr", stored, numeric),
        unique=doc.get("unique", False), indexed=doc.get("indexed", False), min=doc.get("min"), max=doc.get("max"),
        max_length=doc.get("max_length"), pattern=doc.get("pattern"),
        choices=tuple(Choice(c["value"], frozen_map(c.get("label") or {"en": c["value"]}), c.get("color"),
                             tuple(c.get("when", ()))) for c in doc.get("choices", [])),
        depends_on=doc.get("depends_on"), precision=doc.get("precision"), currency=doc.get("currency"),
        target=doc.get("target"),
        expression=report.expression(doc.get("expression"), "/expression", everything, numeric)
        if kind == "formula" else None,
        result_type=doc.get("result_type") or ("decimal" if kind == "formula" else None),
        format=doc.get("format"), digits=doc.get("digits"), renamed_from=doc.get("renamed_from"),
        readonly=doc.get("readonly", False) or kind in ("formula", "autonumber") or "lookup" in doc or rollup is not None,
        required_if=report.expression(doc.get("required_if"), "/required_if", everything, numeric),
        readonly_if=report.expression(doc.get("readonly_if"), "/readonly_if", everything, numeric),
        visible_if=report.expression(doc.get("visible_if"), "/visible_if", everything, numeric),
        lookup=doc.get("lookup"), fetch_from=doc.get("fetch_from"), rollup=rollup, detail=detail, on_delete=on_delete,
        origin=(report.file, report.base),
    )


class _Scope:
    """What building one entity's fields needs to know about the rest of the catalog: the paths the
    entity can read across references, and the raw documents of every entity."""

    def __init__(self, entity: dict, entities: dict[str, dict], paths: PathIndex):
        self.entities, self.paths = entities, paths
        found = paths.paths(entity["name"])
        self.path_names = frozenset(found)
        self.path_numeric = frozenset(n for n, p in found.items() if p.type in NUMERIC_TYPES)

    def rollup_where(self, report: Reporter):
        """Compiles a rollup's ``where`` over the child's stored fields (it runs in SQL)."""
        def compile_where(source: str, child: dict) -> Expression | None:
            fields = child.get("fields", [])
            names = {f["name"] for f in fields if f.get("type") != "formula" and "lookup" not in f}
            names |= {n for n in SYSTEM_FIELDS if (child.get("owned") or n not in ("owner", "team"))
                      and (child.get("stages") or n != "stage")}
            numeric = {f["name"] for f in fields if f.get("type") in NUMERIC_TYPES}
            where = report.expression(source, "/rollup/where", names, numeric)
            if where is not None and (where.old_names or where.user_attrs):
                report("/rollup/where", "a rollup condition reads only the child record (not old. or user.)")
            return where
        return compile_where


def build_stages(doc: dict, report: Reporter, fields: set[str], names: set[str], numeric: set[str],
                 roles: Iterable[str] | None = None) -> tuple[Stage, ...]:
    stage_names = [s["name"] for s in doc.get("stages", [])]
    stages = []
    for stage in doc.get("stages", []):
        at = report.at(stage[ORIGIN])
        if stage_names.count(stage["name"]) > 1:
            at("/name", f"stage '{stage['name']}' is defined twice")
        for i, target in enumerate(stage.get("transitions", [])):
            if target not in stage_names:
                at(f"/transitions/{i}", f"unknown stage {target!r}")
        gate = None
        if "gate" in stage:
            for i, name in enumerate(stage["gate"].get("required", [])):
                if name not in fields:
                    at(f"/gate/required/{i}", f"unknown field {name!r}")
            gate = Gate(tuple(stage["gate"].get("required", ())),
                        at.expression(stage["gate"].get("condition"), "/gate/condition", names, numeric),
                        _message(stage["gate"], at, "/gate/message"))
        transitions = stage.get("transitions")
        if roles is not None:
            _check_roles(at, "/roles", stage.get("roles", []), roles)
        stages.append(Stage(stage["name"], _label(stage, at), stage.get("probability", 0), stage.get("category", "open"),
                            stage.get("color"), tuple(transitions) if transitions is not None else None, gate,
                            stage.get("entry", False), _stage_actions(stage, at), tuple(stage.get("roles", ()))))
    if "initial_stage" in doc and doc["initial_stage"] not in stage_names:
        report("/initial_stage", f"unknown stage {doc['initial_stage']!r}")
    initial = doc.get("initial_stage", stage_names[0] if stage_names else None)
    for stage, built in zip(doc.get("stages", []), stages):
        if built.name == initial and built.set_by:
            where = report if "initial_stage" in doc else report.at(stage[ORIGIN])
            where("/initial_stage" if "initial_stage" in doc else "/set_by", f"'{initial}' is the initial stage: "
                  "new records start there, so an action cannot be required to set it")
    return tuple(stages)


def _with_details(form: Form, entity: str, entities: dict[str, dict]) -> Form:
    """The form, listing every detail entity of this one (a contract's payments) that it does not list yet."""
    listed = {(r.entity, r.field) for r in form.related}
    extra = tuple(RelatedList(name, f["name"], _opt(doc, "plural_label"), _detail_columns(doc, f["name"]))
                  for name, doc in entities.items() for f in doc.get("fields", [])
                  if f.get("detail") and f.get("target") == entity and (name, f["name"]) not in listed)
    return Form(form.name, form.tabs, form.label, form.roles, form.related + extra) if extra else form


def _detail_columns(doc: dict, parent: str) -> tuple[str, ...]:
    """A detail's columns on its parent's page: its "all" list view's, else its first six fields
    (without the reference to the parent, which every row would repeat)."""
    view = doc.get("list_views", {}).get("all")
    names = view["columns"] if view else [f["name"] for f in doc.get("fields", [])][:7]
    return tuple(n for n in names if n != parent)[:6]


def _check_roles(report: Reporter, pointer: str, used: Iterable[str], known: Iterable[str]) -> None:
    known = sorted(known)
    for i, name in enumerate(used):
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            report(f"{pointer}/{i}", f"unknown role {name!r}" + (f" (did you mean '{hint[0]}'?)" if hint else ""))


def _check_names(report: Reporter, pointer: str, used: Iterable[str], known: set[str], what: str = "field") -> None:
    for i, name in enumerate(used):
        if name.lstrip("-") not in known:
            report(f"{pointer}/{i}", f"unknown {what} {name!r}")


def _section(doc: dict, report: Reporter, pointer: str, known: set[str], names: set[str], numeric) -> Section:
    columns = doc.get("columns") or ([doc["fields"]] if "fields" in doc else [])
    for c, column in enumerate(doc.get("columns", [])):
        _check_names(report, f"{pointer}/columns/{c}", column, known)
    _check_names(report, f"{pointer}/fields", doc.get("fields", []), known)
    return Section(_opt(doc, "label"), tuple(tuple(col) for col in columns), doc.get("name"),
                   report.expression(doc.get("visible_if"), f"{pointer}/visible_if", names, numeric), _opt(doc, "help"))


def build_form(name: str, doc: dict, report: Reporter, known: set[str], names: set[str], numeric,
               entities: dict[str, dict], entity_name: str, broken: set[str] = frozenset()) -> Form:
    if "tabs" in doc:
        tabs = tuple(Tab(_opt(t, "label"), tuple(_section(s, report, f"/tabs/{ti}/sections/{si}", known, names, numeric)
                                                 for si, s in enumerate(t["sections"])), t.get("name"))
                     for ti, t in enumerate(doc["tabs"]))
    else:
        tabs = (Tab(None, tuple(_section(s, report, f"/sections/{si}", known, names, numeric)
                                for si, s in enumerate(doc.get("sections", []))), None),)
    related = []
    for i, rel in enumerate(doc.get("related", [])):
        other = entities.get(rel["entity"])
        field = next((f for f in (other or {}).get("fields", []) if f["name"] == rel["field"]), None)
        if other is None:
            if rel["entity"] not in broken:
                report(f"/related/{i}/entity", f"unknown entity {rel['entity']!r}")
        elif field is None or field.get("type") != "reference" or field.get("target") != entity_name:
            report(f"/related/{i}/field", f"'{rel['entity']}.{rel['field']}' is not a reference to '{entity_name}'")
        else:
            other_known = {f["name"] for f in other.get("fields", [])} | set(SYSTEM_FIELDS)
            _check_names(report, f"/related/{i}/columns", rel.get("columns", []), other_known)
        related.append(RelatedList(rel["entity"], rel["field"], _opt(rel, "label"), tuple(rel.get("columns", ()))))
    return Form(name, tabs, _opt(doc, "label"), tuple(doc["roles"]) if "roles" in doc else None, tuple(related))


def build_entity(doc: dict, problems: list[Problem], entities: dict[str, dict],
                 broken: set[str] = frozenset(), roles: Iterable[str] | None = None,
                 paths: PathIndex | None = None) -> EntityDef | None:
    report = Reporter(problems, doc[ORIGIN])
    owned, staged = doc.get("owned", False), bool(doc.get("stages"))
    if doc.get("pooled") and not owned:
        report("/pooled", "a pooled entity must also be owned")
    field_docs = doc.get("fields", [])
    if not field_docs:
        report("/fields", "an entity needs at least one field")
    field_names = [f["name"] for f in field_docs]
    for name in {n for n in field_names if field_names.count(n) > 1}:
        report("/fields", f"field '{name}' is defined twice")
    system = {n for n in SYSTEM_FIELDS if (owned or n not in ("owner", "team")) and (staged or n != "stage")}
    names = set(field_names) | system
    numeric = {f["name"] for f in field_docs if f.get("type") in NUMERIC_TYPES} | {"version"}
    known = set(entities) | set(broken)
    scope = _Scope(doc, entities, paths or PathIndex(entities))
    fields = tuple(filter(None, (build_field(f, doc, report.at(f[ORIGIN]), names, numeric, known, scope)
                                 for f in field_docs)))
    formula_order(fields, {f["name"]: report.at(f[ORIGIN]) for f in field_docs})
    check_details(doc, entities, report)
    everything, numeric_all = names | scope.path_names, numeric | scope.path_numeric
    stages = build_stages(doc, report, set(field_names), everything, numeric_all, roles)
    validation_rules = build_validation_rules(
        doc, report, lambda at, source: at.expression(source, "/condition", everything, numeric_all), names,
        lambda at, rule: _message(rule, at, "/message"))
    probability = doc.get("probability_field")
    if probability is not None:
        target = next((f for f in field_docs if f["name"] == probability), {})
        if target.get("type") not in NUMERIC_TYPES:
            report("/probability_field", f"{probability!r} is not a number field of this entity")
        elif "lookup" in target or "rollup" in target:
            report("/probability_field", f"{probability!r} is computed ({'lookup' if 'lookup' in target else 'rollup'}); "
                                         "the stage's probability needs a field it can set")
        elif not staged:
            report("/probability_field", "the entity has no stages to take a probability from")
    forms = {name: build_form(name, form, report.at(form[ORIGIN]), names, names, numeric, entities, doc["name"], broken)
             for name, form in doc.get("forms", {}).items()}
    if "default" not in forms:
        forms["default"] = Form("default", (Tab(None, (Section(None, (tuple(f.name for f in fields),)),)),))
    forms["default"] = _with_details(forms["default"], doc["name"], entities)
    views = {}
    for name, view in doc.get("list_views", {}).items():
        at = report.at(view[ORIGIN])
        _check_names(at, "/columns", view["columns"], names)
        _check_names(at, "/sort", view.get("sort", []), names)
        for key in view.get("filters", {}):
            if key not in names:
                at(f"/filters/{key}", f"unknown field {key!r}")
        if view.get("group_by") and view["group_by"] not in names:
            at("/group_by", f"unknown field {view['group_by']!r}")
        views[name] = ListView(name, tuple(view["columns"]), _opt(view, "label"), frozen_map(view.get("filters")),
                               tuple(view.get("sort", ())), view.get("group_by"))
    if "all" not in views:
        views["all"] = ListView("all", tuple(f.name for f in fields[:6]))
    kanban = None
    if "kanban" in doc:
        kfield = doc["kanban"]["field"]
        ftype = next((f.type for f in fields if f.name == kfield), "stage" if kfield == "stage" and staged else None)
        if ftype not in ("stage", "select"):
            report("/kanban/field", f"kanban needs the stage or a select field, not {kfield!r}")
        _check_names(report, "/kanban/card_fields", doc["kanban"].get("card_fields", []), names)
        kanban = Kanban(kfield, tuple(doc["kanban"].get("card_fields", ())))
    _check_names(report, "/search_fields", doc.get("search_fields", []), set(field_names))
    _check_names(report, "/default_sort", doc.get("default_sort", []), names)
    rules = []
    for rule in doc.get("duplicate_rules", []):
        at = report.at(rule[ORIGIN])
        _check_names(at, "/fields", rule["fields"], set(field_names))
        rules.append(DuplicateRule(rule["name"], tuple(rule["fields"]), rule.get("action", "block"),
                                   _message(rule, at, "/message")))
    if "title" in doc:
        used = [f for _, f, _, _ in string.Formatter().parse(doc["title"]) if f]
        for name in used:
            if name not in names:
                report("/title", f"unknown field {name!r} in title")
    return EntityDef(
        name=doc["name"], label=_label(doc, report), fields=fields, plural_label=_opt(doc, "plural_label"),
        description=_opt(doc, "description"), icon=doc.get("icon"), owned=owned, pooled=doc.get("pooled", False),
        title=doc.get("title"), search_fields=tuple(doc.get("search_fields", ())),
        default_sort=tuple(doc.get("default_sort", ("-created_at",))), stages=stages,
        initial_stage=doc.get("initial_stage"),
        duplicate_rules=tuple(rules), validation_rules=validation_rules, probability_field=probability,
        forms=frozen_map(forms), list_views=frozen_map(views), kanban=kanban, source=doc[ORIGIN][0],
        follows_owner=any(f.detail and (entities.get(f.target) or {}).get("owned", False) for f in fields))


def build_role(doc: dict, problems: list[Problem], entities: dict[str, EntityDef],
               broken: set[str] = frozenset()) -> RoleDef:
    report = Reporter(problems, doc[ORIGIN])
    grants = {}
    for name, grant in doc.get("entities", {}).items():
        at = report.at(grant[ORIGIN])
        entity = entities.get(name)
        if name != "*" and entity is None:
            if name not in broken:
                at("", f"unknown entity {name!r}")
            continue
        names = set(f.name for f in entity.fields) | set(entity.system_fields()) if entity else set()
        for field in grant.get("fields", {}):
            if entity is None:
                at(f"/fields/{field}", "field rules need a named entity, not '*'")
            elif not entity.has_field(field):
                at(f"/fields/{field}", f"unknown field {field!r} of '{name}'")
        if entity is None and "readonly_if" in grant:
            at("/readonly_if", "readonly_if needs a named entity (its fields), not '*'")
        readonly_if = at.expression(grant.get("readonly_if"), "/readonly_if", names) if entity else None
        grants[name] = EntityGrant(frozen_map(grant.get("actions")), grant.get("pool", False),
                                   frozen_map(grant.get("fields")), readonly_if)
    sharing = []
    for rule in doc.get("sharing", []):
        at = report.at(rule[ORIGIN])
        entity = entities.get(rule["entity"])
        if entity is None:
            if rule["entity"] not in broken:
                at("/entity", f"unknown entity {rule['entity']!r}")
            continue
        names = {f.name for f in entity.fields} | set(entity.system_fields())
        condition = at.expression(rule["condition"], "/condition", names)
        if condition is not None:
            sharing.append(SharingRule(rule["entity"], condition, rule["level"], rule.get("name"), rule.get("team")))
    return RoleDef(doc["name"], _label(doc, report), doc.get("level", 0), _opt(doc, "description"),
                   frozen_map(grants), tuple(sharing), doc[ORIGIN][0])
