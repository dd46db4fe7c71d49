"""Reading request bodies strictly: a JSON object, or a 400 that says what was wrong."""

from __future__ import annotations

from flask import request

from crm_platform.engine.errors import BadRequest


def json_object() -> dict:
    if not request.is_json:
        raise BadRequest("bad_payload", detail="send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("bad_payload", detail="the body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequest("bad_payload", detail="the body must be a JSON object")
    return body
