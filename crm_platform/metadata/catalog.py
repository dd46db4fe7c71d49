"""Loading a catalog: packs → schema-valid documents → merged → checked, frozen :class:`Catalog`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .builder import build_entity, build_role
from .errors import DefinitionError, Problem
from .loader import ORIGIN, resolve_packs, search_paths
from .model import Catalog, PackInfo, frozen_map
from .overlay import merge_packs
from .paths import PathIndex


def _content(document):
    if isinstance(document, dict):
        return {k: _content(v) for k, v in document.items() if k != ORIGIN}
    if isinstance(document, list):
        return [_content(v) for v in document]
    return document


def catalog_version(packs: list[PackInfo], entities: dict, roles: dict) -> str:
    """A stable hash of what the catalog says (not of file paths or formatting)."""
    payload = json.dumps({"packs": [(p.name, p.version) for p in packs],
                          "entities": _content(entities), "roles": _content(roles)},
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def load_catalog(packs: list[str] | str = "base", extra_paths: list[Path] | None = None,
                 layers: list[tuple[str, dict]] | None = None) -> Catalog:
    """Load the named packs (names or folders) and everything they extend or require.

    ``layers`` are extra entity documents (file label, document) applied last, e.g. the designer's
    customisations stored in the database. Raises :class:`DefinitionError` listing every problem.
    """
    refs = [p.strip() for p in packs.split(",") if p.strip()] if isinstance(packs, str) else list(packs)
    problems: list[Problem] = []
    raw = resolve_packs(refs, search_paths(extra_paths), problems)
    if any(p.file == "CRM_PACKS" or p.file.endswith("pack.json") for p in problems):
        raise DefinitionError(problems)  # without the packs themselves there is nothing to check further
    if layers:
        from .loader import RawPack  # a virtual pack holding the layer's documents
        raw.append(RawPack("layer", Path("."), {}, entities=list(layers)))
    entity_docs, role_docs = merge_packs(raw, problems)
    broken = set().union(*(p.broken for p in raw))
    entities = {}
    paths = PathIndex(entity_docs)
    for name, doc in entity_docs.items():
        entity = build_entity(doc, problems, entity_docs, broken, set(role_docs), paths)
        if entity is not None:
            entities[name] = entity
    roles = {name: build_role(doc, problems, entities, broken | set(entity_docs) - set(entities))
             for name, doc in role_docs.items()}
    if problems:
        raise DefinitionError(sorted(problems, key=lambda p: p.file))  # stable: each file's problems in order
    infos = tuple(PackInfo(p.name, p.manifest.get("version", "0"), frozen_map(p.manifest.get("label", {})), str(p.path),
                           tuple(p.manifest.get("extends", ())), tuple(p.manifest.get("requires", ())),
                           p.manifest.get("description")) for p in raw if p.manifest)
    return Catalog(catalog_version(list(infos), entity_docs, role_docs), infos, frozen_map(entities), frozen_map(roles))
