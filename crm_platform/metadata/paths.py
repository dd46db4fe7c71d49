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

    def _fields(self, entity: str) -> dict[str, Mapping]:
        doc = self.entities.get(entity) or {}
        fields = {f["name"]: f for f in doc.get("fields", []) if "name" in f}
        system = {name: {"name": name, "type": kind} for name, kind in SYSTEM_TYPES.items()
                  if (doc.get("owned") or name not in ("owner", "team")) and (doc.get("stages") or name != "stage")}
        return {**system, **fields}

    def paths(self, entity: str) -> dict[str, Path]:
        """name → path, for every path starting at ``entity`` (up to MAX_HOPS references)."""
        if entity not in self._cache:
            out: dict[str, Path] = {}
            self._walk(entity, "", (), out)
            self._cache[entity] = out
        return self._cache[entity]

    def _walk(self, entity: str, prefix: str, hops: tuple[Hop, ...], out: dict[str, Path]) -> None:
        for name, doc in self._fields(entity).items():
            if hops and readable_at_end(doc):
                out[prefix + name] = Path(prefix + name, hops, name, doc)
            if doc.get("type") == "reference" and doc.get("target") in self.entities and len(hops) < MAX_HOPS:
                self._walk(doc["target"], f"{prefix}{name}.", (*hops, Hop(entity, name, doc["target"])), out)

    def resolve(self, entity: str, name: str) -> Path | str:
        """The path, or why there is none (with the nearest known path)."""
        known = self.paths(entity)
        if name in known:
            return known[name]
        head, _, rest = name.partition(".")
        fields = self._fields(entity)
        if head not in fields:
            return _unknown(f"'{head}' is not a field of '{entity}'", head, fields)
        if fields[head].get("type") != "reference":
            return f"'{head}' is not a reference field, so '{name}' leads nowhere"
        if name.count(".") > MAX_HOPS:
            return f"'{name}' follows more than {MAX_HOPS} references"
        tail = fields[head]
        target = tail.get("target")
        if target not in self.entities:
            return f"'{head}' references an unknown entity"
        found = self.resolve(target, rest) if "." in rest else None
        if isinstance(found, str):
            return found
        other = self._fields(target).get(rest)
        if other is not None and not readable_at_end(other):
            return f"'{name}' cannot be read across a reference (a lookup, or a formula that reads other records)"
        return _unknown(f"unknown path '{name}'", name, known)


def readable_at_end(doc: Mapping) -> bool:
    """Whether a path may end at this field: not a lookup, and not a formula that reads other records
    (one level of reading across records at a time)."""
    if "lookup" in doc:
        return False
    return not (doc.get("type") == "formula" and reads_paths(doc.get("expression", "")))


def reads_paths(source: str) -> bool:
    """Whether an expression's text reads across a reference (``a.b`` other than ``old.``/``user.``)."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False  # reported where the expression is compiled
    return any(isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                        and node.value.id in ("old", "user"))
               for node in ast.walk(tree))


def _unknown(message: str, name: str, known) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"{message} (did you mean '{close[0]}'?)" if close else message
