"""Records over HTTP: a thin translation to the record service (which does all the work)."""

from __future__ import annotations

import re

from flask import Blueprint, jsonify, request

from crm_platform.engine import Filter, ListQuery
from crm_platform.engine.errors import BadRequest
from crm_platform.engine.messages import Message

from .context import records
from .payload import json_object, optional_json_object

bp = Blueprint("api_records", __name__, url_prefix="/api/records")

_FILTER = re.compile(r"^filter\[([a-z][a-z0-9_]*)\](?:\[([a-z]+)\])?$")
_PLAIN = {"sort", "q", "limit", "cursor", "page", "count"}


def _int(name: str, text: str | None, default: int | None) -> int | None:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequest("bad_paging", detail=Message("whole_number", {"name": name})) from None


def _flag(name: str, text: str | None) -> bool:
    if text is None:
        return False
    value = _FLAGS.get(text.lower())
    if value is None:
        raise BadRequest("bad_paging", detail=Message("flag", {"name": name}))
    return value


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}


def list_query() -> ListQuery:
    """``?filter[field]=v&filter[field][op]=v&q=&sort=-a,b&limit=&cursor=|page=&count=true``"""
    filters = []
    for key, values in request.args.lists():
        match = _FILTER.match(key)
        if match:
            filters += [Filter(match.group(1), match.group(2) or "eq", value) for value in values]
        elif key not in _PLAIN:
            raise BadRequest("bad_payload", detail=Message("unknown_parameter", {"name": key}))
    args = request.args
    return ListQuery(filters=filters, sort=[s for s in args.get("sort", "").split(",") if s],
                     search=args.get("q"), limit=_int("limit", args.get("limit"), 50),
                     cursor=args.get("cursor"), page=_int("page", args.get("page"), None),
                     count=_flag("count", args.get("count")))


def _version(body: dict) -> int | None:
    """The version the client read: ``"version"`` in the body or the If-Match header (ETag form)."""
    if "version" in body:
        version = body.pop("version")
    else:
        header = request.headers.get("If-Match")
        if not header:
            return None
        version = header.strip().removeprefix("W/").strip('"')
        version = int(version) if version.isascii() and version.isdigit() and len(version) < 12 else None
    if type(version) is not int or not 0 < version < 2 ** 31:
        raise BadRequest("version_required")
    return version


@bp.get("/<entity>")
def list_records(entity: str):
    return jsonify(records().list(entity, list_query()))


@bp.post("/<entity>")
def create_record(entity: str):
    record = records().create(entity, json_object())
    response = jsonify(record)
    response.status_code = 201
    response.headers["Location"] = f"/api/records/{entity}/{record['id']}"
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


@bp.get("/<entity>/<record_id>")
def get_record(entity: str, record_id: str):
    record = records().get(entity, record_id)
    response = jsonify(record)
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


@bp.patch("/<entity>/<record_id>")
def update_record(entity: str, record_id: str):
    body = json_object()
    record = records().update(entity, record_id, body, _version(body))
    response = jsonify(record)
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


@bp.delete("/<entity>/<record_id>")
def delete_record(entity: str, record_id: str):
    records().delete(entity, record_id, _version(optional_json_object()))
    return "", 204


@bp.get("/<entity>/<record_id>/history")
def record_history(entity: str, record_id: str):
    return jsonify({"data": records().history(entity, record_id)})


@bp.post("/<entity>/<record_id>/claim")
def claim_record(entity: str, record_id: str):
    """Public pool → the caller's private pool. Exactly one of two concurrent claims wins (409 for the other)."""
    return jsonify(records().claim(entity, record_id))


@bp.post("/<entity>/<record_id>/release")
def release_record(entity: str, record_id: str):
    return jsonify(records().release(entity, record_id))


@bp.post("/<entity>/<record_id>/assign")
def assign_record(entity: str, record_id: str):
    body = json_object()
    if "owner" not in body:
        raise BadRequest("bad_payload", detail=Message("owner_payload"))
    return jsonify(records().assign(entity, record_id, body["owner"]))
