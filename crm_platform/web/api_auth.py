"""Authentication: bearer tokens for the API, and who the caller is."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .context import accounts, actor
from .payload import json_object, text
from .throttle import login_throttle

bp = Blueprint("api_auth", __name__, url_prefix="/api")


@bp.post("/auth/token")
def issue_token():
    body = json_object()
    username = text(body.get("username"), "username", max_length=None)
    password = text(body.get("password"), "password", max_length=None)
    users = accounts()
    caller = login_throttle().authenticate(username, lambda: users.authenticate(username, password))
    return jsonify({"token": users.issue_token(caller)})


@bp.post("/auth/revoke")
def revoke_token():
    actor()
    accounts().revoke_token(request.headers["Authorization"].partition(" ")[2].strip())
    return "", 204


@bp.get("/me")
def me():
    return jsonify(actor().as_json())
