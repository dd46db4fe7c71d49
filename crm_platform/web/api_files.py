"""File uploads: ``POST /api/files`` (multipart, field ``file``) → the id a ``file`` field stores."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request

from crm_platform.engine.errors import BadRequest
from crm_platform.engine.messages import Message
from crm_platform.engine.files import FileStore

from .context import access, actor, database, installation
from .payload import text

bp = Blueprint("api_files", __name__, url_prefix="/api/files")


def _store() -> FileStore:
    return FileStore(database(), installation().runtime.tables["files"])


@bp.post("")
def upload():
    caller = actor()
    upload = request.files.get("file")
    if upload is None:
        raise BadRequest("bad_payload", detail=Message("file_required"))
    name = text(upload.filename or "file", "file_name", max_length=255)
    content_type = text(upload.mimetype, "content_type", max_length=127)
    stored = _store().save(name, content_type, upload.read(), caller)
    response = jsonify(stored.as_json())
    response.status_code = 201
    response.headers["Location"] = f"/api/files/{stored.id}"
    return response


@bp.get("/<file_id>")
def download(file_id: str):
    """Only for its uploader and for those who can read a record holding it (404 for anyone else)."""
    stored, data = _store().load(file_id, installation().runtime, access())
    response = Response(data, mimetype=stored.content_type)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(stored.name)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _quote(name: str) -> str:
    return quote(name, safe="")
