"""Checking what spans records: lookups, fetches, rollups, master-detail references, formula order
and validation rules. Each function reports problems against the document where they were written
and returns what the model needs; the builder calls them while it builds an entity."""

from __future__ import annotations

from collections.abc import Mapping

from .expressions import Expression
from .model import FieldDef, Rollup, ValidationRule, frozen_map
from .paths import Path, PathIndex, readable_at_end

NUMERIC_TYPES = frozenset({"integer", "decimal", "currency", "percent"})
TEXT_TYPES = frozenset({"text", "textarea", "email", "phone", "url", "autonumber"})


def family(kind: str) -> str:
    """Types whose values convert into each other without loss of meaning."""
    if kind in NUMERIC_TYPES:
        return "number"
    if kind in TEXT_TYPES:
        return "text"
    return kind


def lookup_options(doc: dict, entity: str, paths: PathIndex, report) -> dict:
    """The options a lookup field takes from the field it reads (choices, precision, currency), after
    checking that the path exists and that the declared type is the type of the value read."""
    path = _path(paths, entity, doc["lookup"], report, "/lookup")
    if path is None:
        return {}
    if doc.get("type") != path.type:
        report("/type", f"'{path.name}' is a {path.type} field: declare this lookup with type '{path.type}'")
    for key in ("required", "default", "default_expr", "unique", "fetch_from", "rollup"):
        if key in doc:
            report(f"/{key}", f"a lookup is read from '{path.name}', so it cannot have '{key}'")
    source = path.doc
    return {key: source[key] for key in ("choices", "precision", "currency", "target")
            if key in source and key not in doc}


def check_fetch(doc: dict, entity: str, paths: PathIndex, report) -> None:
    path = _path(paths, entity, doc["fetch_from"], report, "/fetch_from")
    if path is None:
        return
    if doc.get("type") in ("formula", "autonumber"):
        report("/fetch_from", f"a {doc.get('type')} field computes its own value; it cannot fetch one")
    elif family(doc.get("type", "")) != family(path.type):
        report("/fetch_from", f"'{path.name}' is a {path.type} field; it cannot fill a {doc.get('type')} field")


def _path(paths: PathIndex, entity: str, name: str, report, pointer: str) -> Path | None:
    found = paths.resolve(entity, name)
    if isinstance(found, str):
        report(pointer, found)
        return None
    return found


def check_reference_options(doc: dict, entity_doc: dict, report) -> tuple[bool, str]:
    """(detail, on_delete) of a field, checked."""
    detail = doc.get("detail", False)
    on_delete = doc.get("on_delete", "cascade" if detail else "restrict")
    if doc.get("type") != "reference":
        for key in ("detail", "on_delete"):
            if key in doc:
                report(f"/{key}", f"only reference fields have '{key}'")
        return False, "restrict"
    if detail and entity_doc.get("owned"):
        report("/detail", "a detail follows its parent's owner and team: remove 'owned' from the entity")
    if detail and on_delete != "cascade" and on_delete != "restrict":
        report("/on_delete", "a detail cannot outlive its parent: on_delete must be cascade or restrict")
    elif on_delete == "set_null" and doc.get("required"):
        report("/on_delete", "a required reference cannot be cleared: on_delete set_null needs required false")
    return detail, on_delete


def check_details(entity_doc: dict, entities: Mapping[str, dict], report) -> None:
    """One parent per detail entity, and no entity that is (indirectly) a detail of itself."""
    details = [f for f in entity_doc.get("fields", []) if f.get("detail")]
    if len(details) > 1:
        report("/fields", f"an entity is a detail of one parent, not of {len(details)} "
                          f"({', '.join(f['name'] for f in details)})")
        return
    seen, current = [entity_doc["name"]], entity_doc
    while True:
        parent = next((f for f in current.get("fields", []) if f.get("detail")), None)
        if parent is None or parent.get("target") not in entities:
            return
        if parent["target"] in seen:
            report("/fields", "master-detail references form a cycle: " + " → ".join([*seen, parent["target"]]))
            return
        seen.append(parent["target"])
        current = entities[parent["target"]]


def build_rollup(doc: dict, entity: str, entities: Mapping[str, dict], report, compile_where) -> Rollup | None:
    spec, kind = doc["rollup"], doc.get("type")
    child = entities.get(spec["entity"])
    if child is None:
        report("/rollup/entity", f"unknown entity {spec['entity']!r}")
        return None
    fields = {f["name"]: f for f in child.get("fields", [])}
    via = fields.get(spec["via"])
    if via is None or via.get("type") != "reference" or via.get("target") != entity:
        report("/rollup/via", f"'{spec['entity']}.{spec['via']}' is not a reference to '{entity}': "
                              "a rollup summarises records that reference this one")
        return None
    function, name = spec["function"], spec.get("field")
    if function == "count":
        if kind != "integer":
            report("/type", "a count is an integer: declare the rollup field with type 'integer'")
        if name is not None:
            report("/rollup/field", "count counts records; it takes no field")
    elif name is None:
        report("/rollup/field", f"{function} needs the field it summarises")
        return None
    elif name not in fields:
        report("/rollup/field", f"unknown field {name!r} of '{spec['entity']}'")
        return None
    else:
        source = fields[name]
        source_type = source.get("result_type", "decimal") if source.get("type") == "formula" else source.get("type")
        if "lookup" in source or "rollup" in source or not readable_at_end(source):
            report("/rollup/field", f"'{spec['entity']}.{name}' reads other records; a rollup summarises a value "
                                    "of the child record itself (a stored field, or a formula over its fields)")
            return None
        allowed = NUMERIC_TYPES | ({"date", "datetime"} if function in ("min", "max") else set())
        if source_type not in allowed:
            report("/rollup/field", f"{function} needs a number{' or date' if function in ('min', 'max') else ''} "
                                    f"field, and '{spec['entity']}.{name}' is a {source_type} field")
            return None
        if family(kind or "") != family(source_type) or (function == "avg" and kind == "integer"):
            wanted = "decimal, currency or percent" if function == "avg" else (
                "a number type" if source_type in NUMERIC_TYPES else source_type)
            report("/type", f"the {function} of a {source_type} field needs type {wanted}, not {kind!r}")
    where = compile_where(spec.get("where"), child) if "where" in spec else None
    return Rollup(spec["entity"], spec["via"], function, name, where)


def formula_order(fields: tuple[FieldDef, ...], report) -> None:
    """Formulas may read formulas; refuse a cycle, naming it, on the formula where it closes."""
    formulas = {f.name: f for f in fields if f.expression is not None}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = trail[trail.index(name):] + [name]
            report(f"/fields/{_index(fields, name)}/expression", "formulas read each other in a cycle: " + " → ".join(cycle))
            raise _Cycle
        state[name] = "open"
        for other in sorted(formulas[name].expression.names & formulas.keys()):
            visit(other, [*trail, name])
        state[name] = "done"

    for name in formulas:
        try:
            visit(name, [])
        except _Cycle:
            state.update(dict.fromkeys(formulas, "done"))
            return


class _Cycle(Exception):
    pass


def _index(fields: tuple[FieldDef, ...], name: str) -> int:
    return next(i for i, f in enumerate(fields) if f.name == name)


def build_validation_rules(doc: dict, report, expression, known: set[str], message) -> tuple[ValidationRule, ...]:
    rules, seen = [], set()
    for i, rule in enumerate(doc.get("validation_rules", [])):
        at = f"/validation_rules/{i}"
        if rule["name"] in seen:
            report(f"{at}/name", f"validation rule '{rule['name']}' is defined twice")
        seen.add(rule["name"])
        for j, name in enumerate(rule["fields"]):
            if name not in known:
                report(f"{at}/fields/{j}", f"unknown field {name!r}")
        condition: Expression | None = expression(rule["condition"], f"{at}/condition")
        text = message(rule, f"{at}/message")
        if condition is not None:
            rules.append(ValidationRule(rule["name"], condition, text or frozen_map({"en": rule["name"]}),
                                        tuple(rule["fields"])))
    return tuple(rules)
