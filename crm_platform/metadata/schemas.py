"""The JSON meta-schemas for definition files, and schema validation that reports JSON pointers."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources

import jsonschema
from referencing import Registry, Resource

KINDS = ("pack", "entity", "role")


@cache
def _registry() -> tuple[Registry, dict[str, dict]]:
    docs = {kind: json.loads(resources.files(__package__).joinpath(f"schemas/{kind}.json").read_text("utf-8"))
            for kind in KINDS}
    registry = Registry().with_resources((doc["$id"], Resource.from_contents(doc)) for doc in docs.values())
    return registry, docs


@cache
def validator(kind: str) -> jsonschema.protocols.Validator:
    registry, docs = _registry()
    cls = jsonschema.validators.validator_for(docs[kind])
    return cls(docs[kind], registry=registry, format_checker=cls.FORMAT_CHECKER)


def schema_document(kind: str) -> dict:
    return _registry()[1][kind]


def pointer(path) -> str:
    """A JSON pointer (RFC 6901) for a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def iter_problems(kind: str, document) -> Iterator[tuple[str, str]]:
    """Yield ``(json_pointer, message)`` for every schema violation, most specific first."""
    errors = sorted(validator(kind).iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        yield from _explain(error)


def _explain(error) -> Iterator[tuple[str, str]]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        for key in sorted(set(error.instance) - set(allowed)):
            hint = difflib.get_close_matches(key, allowed, n=1)
            suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
            yield pointer(path + [key]), f"unknown key '{key}'{suffix}"
        return
    if error.validator == "enum" and path and path[-1] == "type":
        hint = difflib.get_close_matches(str(error.instance), error.validator_value, n=1)
        suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
        yield pointer(path), f"unknown type {error.instance!r}{suffix}"
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        yield from _explain(best)
        return
    yield pointer(path), error.message
