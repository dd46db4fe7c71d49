"""Authentication: bearer tokens for the API, and who the caller is."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from crm_platform.engine.errors import BadRequest

from .context import actor, installation
from .payload import json_object

bp = Blueprint("api_auth", __name__, url_prefix="/api")


@bp.post("/auth/token")
def issue_token():
    body = json_object()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("bad_payload", detail='send {"username": "...", "password": "..."}')
    accounts = installation().accounts
    caller = accounts.authenticate(username, password, request.remote_addr or "")
    return jsonify({"token": accounts.issue_token(caller)})


@bp.post("/auth/revoke")
def revoke_token():
    actor()
    installation().accounts.revoke_token(request.headers["Authorization"].partition(" ")[2].strip())
    return "", 204


@bp.get("/me")
def me():
    return jsonify(actor().as_json())
