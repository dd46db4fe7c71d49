"""Checking what spans records: lookups, fetches, rollups, master-detail references, formula order
and validation rules. Each function reports problems against the document where they were written
and returns what the model needs; the builder calls them while it builds an entity."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .expressions import Expression
from .loader import ORIGIN
from .model import FieldDef, Rollup, ValidationRule, frozen_map
from .paths import Path, PathIndex, across_records, suggest

NUMERIC_TYPES = frozenset({"integer", "decimal", "currency", "percent"})
TEXT_TYPES = frozenset({"text", "textarea", "email", "phone", "url", "autonumber"})
#: Number types that hold a fraction: what a sum, min or max of one, or any average, needs.
FRACTION_TYPES = ("decimal", "currency", "percent")
#: Keys that say how a stored value is written, meaningless on a field whose value is computed.
_WRITTEN = ("required", "default", "default_expr", "unique", "fetch_from")


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
    for key in (*_WRITTEN, "rollup", "detail", "on_delete"):
        if key in doc:
            report(f"/{key}", f"a lookup shows the value of '{doc['lookup']}', so it cannot have '{key}'")
    path = _path(paths, entity, doc["lookup"], report, "/lookup")
    if path is None:
        return {}
    if doc.get("type") != path.type:
        report("/type", f"'{path.name}' is a {path.type} field: declare this lookup with type '{path.type}'")
    source = path.doc
    return {key: source[key] for key in ("choices", "precision", "currency", "target")
            if key in source and key not in doc}


def check_fetch(doc: dict, entity: str, paths: PathIndex, report) -> None:
    """The copied value must be one the field can hold, so that setting a reference never fails on a
    value its user did not write."""
    path = _path(paths, entity, doc["fetch_from"], report, "/fetch_from")
    if path is None:
        return
    kind, source = doc.get("type"), path.doc
    if kind in ("formula", "autonumber"):
        report("/fetch_from", f"a {kind} field computes its own value; it cannot fetch one")
    elif family(kind or "") != family(path.type):
        report("/fetch_from", f"'{path.name}' is a {path.type} field; it cannot fill a {kind} field")
    elif kind == "integer" and path.type != "integer":
        report("/fetch_from", f"'{path.name}' is a {path.type} field, whose values may have a fraction; "
                              "it cannot fill an integer field")
    elif kind == "reference" and source.get("target") != doc.get("target"):
        report("/fetch_from", f"'{path.name}' references '{source.get('target')}'; it cannot fill a "
                              f"reference to '{doc.get('target')}'")
    elif kind in ("select", "multiselect"):
        missing = [c["value"] for c in source.get("choices", [])
                   if c["value"] not in {own["value"] for own in doc.get("choices", [])}]
        if missing:
            report("/fetch_from", f"'{path.name}' may hold {', '.join(map(repr, missing))}, which "
                                  f"{'is not a choice' if len(missing) == 1 else 'are not choices'} of this field")


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
    """One parent per detail entity, and no entity that is (indirectly) a detail of itself; reported
    on the ``detail`` key that makes the problem, in the file that wrote it."""
    details = [f for f in entity_doc.get("fields", []) if f.get("detail")]
    first, name = (details or [None])[0], entity_doc["name"]
    for extra in details[1:]:
        report.at(extra[ORIGIN])("/detail", f"'{name}' is a detail of '{first.get('target')}' already "
                                            f"(field '{first['name']}'): a detail has one parent")
    seen, current = [name], entity_doc
    while True:
        parent = next((f for f in current.get("fields", []) if f.get("detail")), None)
        if parent is None or parent.get("target") not in entities:
            return
        if parent["target"] in seen:
            report.at(first[ORIGIN])("/detail", "master-detail references form a cycle: "
                                                + " → ".join([*seen, parent["target"]]))
            return
        seen.append(parent["target"])
        current = entities[parent["target"]]


def build_rollup(doc: dict, entity: str, entities: Mapping[str, dict], report, compile_where) -> Rollup | None:
    """The rollup, if its child, reference, function and field fit together and the field's type holds
    the result."""
    spec, kind = doc["rollup"], doc.get("type")
    for key in _WRITTEN:
        if key in doc:
            report(f"/{key}", f"a rollup is computed from the '{spec['entity']}' records, so it cannot have '{key}'")
    child = entities.get(spec["entity"])
    if child is None:
        report("/rollup/entity", suggest(f"unknown entity {spec['entity']!r}", spec["entity"], entities))
        return None
    fields = {f["name"]: f for f in child.get("fields", [])}
    if not _check_via(spec, entity, fields, report):
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
    elif not _check_summarised(spec, kind, fields, report):
        return None
    where = compile_where(spec.get("where"), child) if "where" in spec else None
    return Rollup(spec["entity"], spec["via"], function, name, where)


def _check_via(spec: Mapping, entity: str, fields: Mapping[str, dict], report) -> bool:
    """Whether the child's ``via`` is a stored reference to this entity (naming those it has, if not)."""
    child, via = spec["entity"], spec["via"]
    doc = fields.get(via)
    if doc is None:
        report("/rollup/via", suggest(f"unknown field {via!r} of '{child}'", via, fields))
        return False
    if doc.get("type") == "reference" and doc.get("target") == entity and "lookup" not in doc:
        return True
    refs = [n for n, f in fields.items() if f.get("type") == "reference" and f.get("target") == entity
            and "lookup" not in f]
    why = "is a lookup, not a stored reference" if "lookup" in doc else f"is not a reference to '{entity}'"
    found = f"its references to '{entity}': {', '.join(refs)}" if refs else f"'{child}' has no reference to '{entity}'"
    report("/rollup/via", f"'{child}.{via}' {why}: a rollup summarises the records whose reference "
                          f"points at this one ({found})")
    return False


def _check_summarised(spec: Mapping, kind: str | None, fields: Mapping[str, dict], report) -> bool:
    """Whether ``field`` is a number (or, for min and max, a date) of the child itself; reports a
    rollup type that cannot hold the result."""
    child, function, name = spec["entity"], spec["function"], spec["field"]
    source = fields.get(name)
    if source is None:
        report("/rollup/field", suggest(f"unknown field {name!r} of '{child}'", name, fields))
        return False
    if "rollup" in source or name in across_records(fields):
        report("/rollup/field", f"'{child}.{name}' reads other records; a rollup summarises a value "
                                "of the child record itself (a stored field, or a formula over its fields)")
        return False
    source_type = source.get("result_type", "decimal") if source.get("type") == "formula" else source.get("type")
    dated = function in ("min", "max")
    if source_type not in NUMERIC_TYPES | ({"date", "datetime"} if dated else set()):
        report("/rollup/field", f"{function} needs a number{' or date' if dated else ''} field, and "
                                f"'{child}.{name}' is a {source_type} field")
        return False
    if source_type in ("date", "datetime"):
        what, allowed = f"a {source_type}", (source_type,)
    elif function == "avg" or source_type != "integer":
        what, allowed = "a number that may have a fraction", FRACTION_TYPES
    else:
        what, allowed = "a whole number", ("integer", *FRACTION_TYPES)
    if kind not in allowed:
        options = ", ".join(f"'{t}'" for t in allowed[:-1]) + (" or " if len(allowed) > 1 else "") + f"'{allowed[-1]}'"
        report("/type", f"the {function} of '{child}.{name}' is {what}: declare the rollup field with "
                        f"type {options}, not {kind!r}")
    return True


def formula_order(fields: tuple[FieldDef, ...], reporters: Mapping[str, Callable]) -> None:
    """Formulas may read formulas; refuse a cycle, naming it, on the formula where it closes (reported
    in the file that wrote that formula: ``reporters`` by field name)."""
    formulas = {f.name: f for f in fields if f.expression is not None}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = trail[trail.index(name):] + [name]
            reporters[name]("/expression", "formulas read each other in a cycle: " + " → ".join(cycle))
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


def build_validation_rules(doc: dict, report, expression, known: set[str], message) -> tuple[ValidationRule, ...]:
    """The entity's rules, each problem reported in the file that wrote the rule."""
    rules, seen = [], set()
    for rule in doc.get("validation_rules", []):
        at = report.at(rule[ORIGIN])
        if rule["name"] in seen:
            at("/name", f"validation rule '{rule['name']}' is defined twice")
        seen.add(rule["name"])
        for j, name in enumerate(rule["fields"]):
            if name not in known:
                at(f"/fields/{j}", suggest(f"unknown field {name!r}", name, known))
        condition: Expression | None = expression(at, rule["condition"])
        text = message(at, rule)
        if condition is not None:
            rules.append(ValidationRule(rule["name"], condition, text or frozen_map({"en": rule["name"]}),
                                        tuple(rule["fields"])))
    return tuple(rules)
