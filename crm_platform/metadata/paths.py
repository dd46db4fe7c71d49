"""Paths across references: ``account.industry``, ``opportunity.account.region``.

A path is a chain of reference fields ending at a field of the last entity reached. Paths are what
lookups, ``fetch_from`` and expressions read across records; this module says which paths an
entity has, from the merged raw documents, before any entity is built (so an entity can name paths
into entities built after it).
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from .model import SYSTEM_FIELDS

#: Hops a path may take (``a.b.c.field`` at most).
MAX_HOPS = 3
#: The system fields a path may end at, with the type they have there.
SYSTEM_TYPES = {"id": "text", "version": "integer", "owner": "user", "team": "text", "stage": "text",
                "created_at": "datetime", "created_by": "user", "updated_at": "datetime", "updated_by": "user"}
assert set(SYSTEM_TYPES) == set(SYSTEM_FIELDS)


@dataclass(frozen=True, slots=True)
class Hop:
    """One reference followed: ``field`` of ``entity`` points at ``target``."""
    entity: str
    field: str
    target: str


@dataclass(frozen=True, slots=True)
class Path:
    """A resolved path: the references it follows, and the field it ends at (its raw document)."""
    name: str
    hops: tuple[Hop, ...]
    field: str
    doc: Mapping

    @property
    def entity(self) -> str:
        """The entity the path ends in."""
        return self.hops[-1].target

    @property
    def type(self) -> str:
        """The type of the value read: a formula's result type, else the field's type."""
        if self.doc.get("type") == "formula":
            return self.doc.get("result_type", "decimal")
        return self.doc.get("type", "text")


class PathIndex:
    """Every path of every entity, from the merged raw entity documents (built lazily, per entity)."""

    def __init__(self, entities: Mapping[str, Mapping]):
        self.entities = entities
        self._cache: dict[str, dict[str, Path]] = {}
        self._across: dict[str, frozenset[str]] = {}

    def _fields(self, entity: str) -> dict[str, Mapping]:
        doc = self.entities.get(entity) or {}
        fields = {f["name"]: f for f in doc.get("fields", []) if "name" in f}
        system = {name: {"name": name, "type": kind} for name, kind in SYSTEM_TYPES.items()
                  if (doc.get("owned") or name not in ("owner", "team")) and (doc.get("stages") or name != "stage")}
        return {**system, **fields}

    def across(self, entity: str) -> frozenset[str]:
        """The fields of ``entity`` whose value is read from other records (see :func:`across_records`)."""
        if entity not in self._across:
            self._across[entity] = across_records(self._fields(entity))
        return self._across[entity]

    def paths(self, entity: str) -> dict[str, Path]:
        """name → path, for every path starting at ``entity`` (up to MAX_HOPS references)."""
        if entity not in self._cache:
            out: dict[str, Path] = {}
            self._walk(entity, "", (), out)
            self._cache[entity] = out
        return self._cache[entity]

    def _walk(self, entity: str, prefix: str, hops: tuple[Hop, ...], out: dict[str, Path]) -> None:
        across = self.across(entity)
        for name, doc in self._fields(entity).items():
            if hops and name not in across:
                out[prefix + name] = Path(prefix + name, hops, name, doc)
            if _followable(doc) and doc.get("target") in self.entities and len(hops) < MAX_HOPS:
                self._walk(doc["target"], f"{prefix}{name}.", (*hops, Hop(entity, name, doc["target"])), out)

    def resolve(self, entity: str, name: str) -> Path | str:
        """The path, or why there is none, naming the path as written (with the nearest known path)."""
        known = self.paths(entity)
        if name in known:
            return known[name]
        *hops, last = name.split(".")
        if len(hops) > MAX_HOPS:
            return f"'{name}' follows {len(hops)} references; a path follows at most {MAX_HOPS}"
        current = entity
        for i, hop in enumerate(hops):
            doc = self._fields(current).get(hop)
            if doc is None:
                return suggest(f"unknown path '{name}': '{hop}' is not a field of '{current}'", name, known)
            followed = ".".join(hops[:i + 1])
            if doc.get("type") != "reference":
                return f"'{name}' cannot be read: '{followed}' is a {doc.get('type')} field, not a reference"
            if not _followable(doc):
                return _instead(f"'{name}' cannot be read: '{followed}' is a lookup (of '{doc['lookup']}'), and a "
                                "path follows only stored references", [*hops[:i], doc["lookup"], *hops[i + 1:], last])
            if doc.get("target") not in self.entities:
                return f"'{name}' cannot be read: '{followed}' references an unknown entity"
            current = doc["target"]
        end = self._fields(current).get(last)
        if hops and end is not None and last in self.across(current):
            if "lookup" in end:
                return _instead(f"'{name}' is a lookup (of '{end['lookup']}'), and a path cannot end at a lookup",
                                [*hops, end["lookup"]])
            return (f"'{name}' is a formula that reads other records, and a path can end only at a formula "
                    "over its own record's fields")
        return suggest(f"unknown path '{name}'", name, known)


def _followable(doc: Mapping) -> bool:
    """Whether a path may follow this field: a stored reference (a lookup's value is not in the row,
    so the records it points at cannot be fetched with the row's)."""
    return doc.get("type") == "reference" and "lookup" not in doc


def _instead(why: str, parts: list[str]) -> str:
    """Why a path cannot use a lookup, and the path that reads the same value (if it is not too long)."""
    instead = ".".join(parts)
    return why + (f": read '{instead}' instead" if instead.count(".") <= MAX_HOPS else "")


def across_records(fields: Mapping[str, Mapping]) -> frozenset[str]:
    """The fields (of one entity: name → raw document) whose value is read from other records: lookups,
    and formulas that read a path or such a field, through any chain of formulas. A path may not end
    at one of them, nor a rollup summarise one: reading a record's own values never reads another."""
    across = {name for name, doc in fields.items() if "lookup" in doc}
    formulas = {name: _reads(doc.get("expression", "")) for name, doc in fields.items()
                if doc.get("type") == "formula"}
    grew = True
    while grew:
        grew = False
        for name, (names, reads_path) in formulas.items():
            if name not in across and (reads_path or names & across):
                across.add(name)
                grew = True
    return frozenset(across)


def _reads(source: str) -> tuple[frozenset[str], bool]:
    """The plain names an expression reads, and whether it reads across a reference (``a.b`` other
    than ``old.``/``user.``)."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(), False  # reported where the expression is compiled
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = frozenset(node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in called)
    return names, any(isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                               and node.value.id in ("old", "user"))
                      for node in ast.walk(tree))


def suggest(message: str, name: str, known) -> str:
    """The message, with the known name closest to ``name`` as a suggestion (if one is close)."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"{message} (did you mean '{close[0]}'?)" if close else message
