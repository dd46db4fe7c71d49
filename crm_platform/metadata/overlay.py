"""Merging packs: a pack that extends another adds fields, overrides labels, adds stages.

Merging works on the raw (schema-valid) documents. Every dict that can be reported on later
(an entity, a field, a stage, a form, a role) is stamped with ``ORIGIN = (file, pointer)`` of the
document that last defined it, so a problem found after merging still names the right file.
"""

from __future__ import annotations

import copy

from .loader import ORIGIN, RawPack

#: Lists of named items that merge item-by-item (by "name"); other lists are replaced.
_NAMED_LISTS = ("fields", "stages", "duplicate_rules")
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


def merge_entity(base: dict, overlay: dict) -> dict:
    merged = _merge_labels({k: v for k, v in base.items() if k not in _NAMED_LISTS + _REPLACED_MAPS},
                           {k: v for k, v in overlay.items() if k not in _NAMED_LISTS + _REPLACED_MAPS})
    merged[ORIGIN] = base[ORIGIN]
    for key in _NAMED_LISTS:
        if key in base or key in overlay:
            merged[key] = _merge_named(base.get(key, []), overlay.get(key, []))
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


def merge_packs(packs: list[RawPack]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Entity and role documents by name, with later packs overlaid on earlier ones."""
    entities: dict[str, dict] = {}
    roles: dict[str, dict] = {}
    for pack in packs:
        for file, document in pack.entities:
            doc = stamp(document, file)
            entities[doc["name"]] = merge_entity(entities[doc["name"]], doc) if doc["name"] in entities else doc
        for file, document in pack.roles:
            doc = stamp(document, file)
            roles[doc["name"]] = merge_role(roles[doc["name"]], doc) if doc["name"] in roles else doc
    return entities, roles
