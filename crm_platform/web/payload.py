"""The request boundary: what a request may carry, decided once, before any view or the engine sees it.

- JSON bodies: one JSON object, parsed by :mod:`.jsonio` (exact decimals; too-deep nesting and lone
  surrogates refused) — or a 400 that says what was wrong.
- The URL (path and query string) and other free text a request hands to the engine (usernames,
  passwords, file names): no NUL characters (PostgreSQL cannot hold them in text) and no lone surrogates.
Field values are not checked here: each field type's check refuses what it cannot store, as a 422 on
that field, so a bad record still names every failing field.
"""

from __future__ import annotations

from flask import Flask, request

from crm_platform.engine.errors import BadRequest
from crm_platform.engine.messages import Message

from .jsonio import MalformedJSON, parse


def json_object() -> dict:
    if not request.is_json:
        raise BadRequest("bad_payload", detail=Message("json_required"))
    try:
        body = parse(request.get_data(cache=True))
    except MalformedJSON as exc:
        raise BadRequest("bad_payload", detail=exc.message) from None
    if not isinstance(body, dict):
        raise BadRequest("bad_payload", detail=Message("json_object"))
    return body


def optional_json_object() -> dict:
    """The body's JSON object if the request has one (DELETE may send ``{"version": n}``), else {}."""
    if not request.is_json or not request.get_data(cache=True).strip():
        return {}
    return json_object()


def text(value, name: str, max_length: int | None = 1000) -> str:
    """A string a request hands to the engine that is not a field value (a username, an owner id...)."""
    if not isinstance(value, str):
        raise BadRequest("bad_payload", detail=Message("not_text", {"name": name}))
    if max_length is not None and len(value) > max_length:
        raise BadRequest("bad_payload", detail=Message("too_long", {"name": name, "max": max_length}))
    problem = unstorable(value)
    if problem:
        raise BadRequest("bad_payload", detail=Message(problem, {"name": name}))
    return value


def unstorable(value: str) -> str | None:
    """The message key of what makes ``value`` unstorable, or None."""
    if "\x00" in value:
        return "has_nul"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "has_surrogate"
    return None


def _check_url() -> None:
    """No NUL or lone surrogate anywhere in the path or the query string's names and values."""
    problem = unstorable(request.path)
    if problem:
        raise BadRequest("bad_payload", detail=Message(problem, {"name": "url_path"}))
    for key, values in request.args.lists():
        for item in (key, *values):
            problem = unstorable(item)
            if problem:
                raise BadRequest("bad_payload", detail=Message(problem, {"name": "query"}))


def init_app(app: Flask) -> None:
    app.before_request(_check_url)
