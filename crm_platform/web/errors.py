"""Turning exceptions into the API's error bodies: ``{"error": {"code", "message", "fields"}}``."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from crm_platform.engine.errors import (BadRequest, Conflict, Duplicate, FieldsForbidden, Forbidden, NotFound,
                                        RecordError, RecordInvalid, TooManyAttempts, Unauthenticated)

from .context import locale

STATUS = {BadRequest: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409, RecordInvalid: 422,
          TooManyAttempts: 429}


def error_response(code: str, message: str, status: int, fields: dict | None = None, **extra):
    body = {"code": code, "message": message, **extra}
    if fields is not None:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="crm"'
    return response


def _record_error(exc: RecordError):
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    lang = locale()
    fields = None
    extra = {}
    if isinstance(exc, RecordInvalid | FieldsForbidden):
        fields = {name: [m.render(lang) for m in messages] for name, messages in sorted(exc.fields.items())}
    if isinstance(exc, Duplicate) and exc.existing_id:
        extra["existing_id"] = exc.existing_id
    return error_response(exc.code, exc.message.render(lang), status, fields, **extra)


def _http_error(exc: HTTPException):
    codes = {400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
             409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "validation",
             500: "internal"}
    return error_response(codes.get(exc.code, "error"), exc.description or exc.name, exc.code)


def register(app: Flask) -> None:
    app.register_error_handler(RecordError, _record_error)
    app.register_error_handler(HTTPException, _http_error)
