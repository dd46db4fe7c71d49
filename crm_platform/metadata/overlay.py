"""Merging packs: a pack that extends another adds fields, overrides labels, adds and places stages.

Merging works on the raw (schema-valid) documents. Every dict that can be reported on later
(an entity, a field, a stage, a form, a role) is stamped with ``ORIGIN = (file, pointer)`` of the
document that last defined it, so a problem found after merging still names the right file.
Mistakes only the merge can see (placing a stage next to one that does not exist) are appended to
the caller's problem list, with the file and pointer where the overlay wrote them.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable

from .errors import Problem
from .loader import ORIGIN, RawPack

#: Lists of named items that merge item-by-item (by "name"); other lists are replaced.
_NAMED_LISTS = ("fields", "stages", "duplicate_rules", "validation_rules")
#: Keys of a stage that say where it goes and what it adds to the merged stage: the merge applies
#: them, so they never reach the builder (nor the catalog version).
_PLACEMENT = ("before", "after", "add_transitions")
#: Maps whose values are replaced whole by an overlay (a form is one layout, not a patchwork).
_REPLACED_MAPS = ("forms", "list_views")


def stamp(document: dict, file: str) -> dict:
    document = copy.deepcopy(document)
    document.pop("$schema", None)
    document[ORIGIN] = (file, "")
    for key in _NAMED_LISTS:
        for index, item in enumerate(document.get(key, [])):
            item[ORIGIN] = (file, f"/{key}/{index}")
    for key in _REPLACED_MAPS:
        for name, item in document.get(key, {}).items():
            item[ORIGIN] = (file, f"/{key}/{name}")
    for index, rule in enumerate(document.get("sharing", [])):
        rule[ORIGIN] = (file, f"/sharing/{index}")
    for name, grant in document.get("entities", {}).items():
        grant[ORIGIN] = (file, f"/entities/{name}")
    return document


def _merge_labels(base: dict, overlay: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != ORIGIN:
            merged[key] = _merge_labels(merged[key], value) if key in ("label", "help", "plural_label",
                                                                       "description", "message") else value
        else:
            merged[key] = value
    return merged


def _merge_named(base: list[dict], overlay: list[dict]) -> list[dict]:
    merged = [dict(item) for item in base]
    index = {item["name"]: i for i, item in enumerate(merged)}
    for item in overlay:
        if item["name"] in index:
            target = merged[index[item["name"]]]
            if "choices" in item and "choices" in target:
                item = dict(item, choices=_merge_choices(target["choices"], item["choices"]))
            merged[index[item["name"]]] = _merge_labels(target, item)
        else:
            index[item["name"]] = len(merged)
            merged.append(item)
    return merged


def _merge_choices(base: list[dict], overlay: list[dict]) -> list[dict]:
    merged = {c["value"]: c for c in base}
    for choice in overlay:
        merged[choice["value"]] = _merge_labels(merged.get(choice["value"], {}), choice)
    return list(merged.values())


Report = Callable[[str, str], None]


def _reporter(problems: list[Problem], origin: tuple[str, str]) -> Report:
    """Report at a pointer relative to ``origin``, the (file, pointer) an overlay item was stamped with."""
    file, base = origin
    return lambda pointer, message: problems.append(Problem(file, base + pointer, message))


def _unknown_stage(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"unknown stage {name!r}" + (f" (did you mean '{close[0]}'?)" if close else "")


def _position(stage: dict, merged: list[dict], report: Report) -> int:
    """Where a new stage goes in the pipeline: before or after the stage it names, else at the end."""
    keys = [key for key in ("before", "after") if key in stage]
    if len(keys) == 2:
        report("", f"'{stage['name']}' cannot go both before '{stage['before']}' and after "
                   f"'{stage['after']}': give one")
    if len(keys) != 1:
        return len(merged)
    names = [s["name"] for s in merged]
    anchor = stage[keys[0]]
    if anchor not in names:
        report(f"/{keys[0]}", _unknown_stage(anchor, names))
        return len(merged)
    return names.index(anchor) + (keys[0] == "after")


def _add_transitions(stage: dict, merged: list[dict], report: Report) -> None:
    """Append ``stage``'s ``add_transitions`` to the merged stage of that name, each name once.
    Unknown names are reported here, at the overlay's own list, and not appended (so the builder
    does not report them again at an index of the merged list)."""
    names = [s["name"] for s in merged]
    index = names.index(stage["name"])
    transitions = merged[index].get("transitions")
    if transitions is None:
        report("/add_transitions", f"'{stage['name']}' allows every transition already; "
                                   "add_transitions has no effect")
        return
    added = list(transitions)
    for i, name in enumerate(stage["add_transitions"]):
        if name not in names:
            report(f"/add_transitions/{i}", _unknown_stage(name, names))
        elif name not in added:
            added.append(name)
    merged[index] = dict(merged[index], transitions=added)


def merge_stages(base: list[dict], overlay: list[dict], problems: list[Problem]) -> list[dict]:
    """Stages merged by name. A stage new to ``base`` goes ``before``/``after`` the stage it names
    (one of ``base`` or one placed earlier in ``overlay``), else at the end: stage order is the
    pipeline order, the kanban columns and the default initial stage. Then ``add_transitions``
    extend the merged stages, so an overlay may add a stage and the transitions into it in one file.
    Moving a stage of ``base`` is not supported."""
    merged = [dict(stage) for stage in base]
    existing = {stage["name"] for stage in base}
    for stage in overlay:
        report = _reporter(problems, stage[ORIGIN])
        item = {key: value for key, value in stage.items() if key not in _PLACEMENT}
        if stage["name"] not in existing:
            merged.insert(_position(stage, merged, report), item)
            continue
        for key in ("before", "after"):
            if key in stage:
                report(f"/{key}", f"stage '{stage['name']}' exists already: moving a stage is not supported "
                                  "(before and after only place a new stage)")
        index = next(i for i, s in enumerate(merged) if s["name"] == stage["name"])
        merged[index] = _merge_labels(merged[index], item)
    for stage in overlay:
        if "add_transitions" in stage:
            _add_transitions(stage, merged, _reporter(problems, stage[ORIGIN]))
    return merged


def merge_entity(base: dict, overlay: dict, problems: list[Problem]) -> dict:
    merged = _merge_labels({k: v for k, v in base.items() if k not in _NAMED_LISTS + _REPLACED_MAPS},
                           {k: v for k, v in overlay.items() if k not in _NAMED_LISTS + _REPLACED_MAPS})
    merged[ORIGIN] = base[ORIGIN]
    for key in ("fields", "duplicate_rules", "validation_rules"):
        if key in base or key in overlay:
            merged[key] = _merge_named(base.get(key, []), overlay.get(key, []))
    if "stages" in base or "stages" in overlay:
        merged["stages"] = merge_stages(base.get("stages", []), overlay.get("stages", []), problems)
    for key in _REPLACED_MAPS:
        if key in base or key in overlay:
            merged[key] = {**base.get(key, {}), **overlay.get(key, {})}
    return merged


def merge_role(base: dict, overlay: dict) -> dict:
    merged = _merge_labels({k: v for k, v in base.items() if k not in ("entities", "sharing")},
                           {k: v for k, v in overlay.items() if k not in ("entities", "sharing")})
    merged[ORIGIN] = base[ORIGIN]
    grants = {name: dict(grant) for name, grant in base.get("entities", {}).items()}
    for name, grant in overlay.get("entities", {}).items():
        current = grants.get(name, {})
        grants[name] = {**current, **grant,
                        "actions": {**current.get("actions", {}), **grant.get("actions", {})},
                        "fields": {**current.get("fields", {}), **grant.get("fields", {})}}
    merged["entities"] = grants
    merged["sharing"] = base.get("sharing", []) + overlay.get("sharing", [])
    return merged


def _define_entity(document: dict, problems: list[Problem]) -> dict:
    """An entity's first document. Its stages go through the same placement as an overlay's (its own
    stages being all new), so the placement keys are applied and stripped here too."""
    if "stages" in document:
        document["stages"] = merge_stages([], document["stages"], problems)
    return document


def merge_packs(packs: list[RawPack], problems: list[Problem]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Entity and role documents by name, with later packs overlaid on earlier ones; mistakes in how
    an overlay places its stages are appended to ``problems``."""
    entities: dict[str, dict] = {}
    roles: dict[str, dict] = {}
    for pack in packs:
        for file, document in pack.entities:
            doc = stamp(document, file)
            base = entities.get(doc["name"])
            entities[doc["name"]] = merge_entity(base, doc, problems) if base else _define_entity(doc, problems)
        for file, document in pack.roles:
            doc = stamp(document, file)
            roles[doc["name"]] = merge_role(roles[doc["name"]], doc) if doc["name"] in roles else doc
    return entities, roles
