"""Turning exceptions into the API's error bodies:
``{"error": {"code", "message", "fields", "request_id"}}``.

Every error names the request's id (``web/requestlog.py``), so what a user reports finds the log line.
Anything unhandled is logged with its traceback and answered 500 ``internal`` — never a bare page.
The HTML pages (everything outside ``/api``) answer their errors as HTML; a login form whose CSRF token
expired (a restart without a persisted secret key, a tab left open) is shown again with a message.
"""

from __future__ import annotations

import logging
from html import escape

from flask import Flask, Response, flash, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from crm_platform.engine.errors import (BadRequest, Conflict, Duplicate, FieldsForbidden, Forbidden, NotFound,
                                        RecordError, RecordInvalid, TooManyAttempts, Unauthenticated)
from crm_platform.engine.messages import Message

from .context import locale
from .requestlog import request_id

log = logging.getLogger(__name__)

STATUS = {BadRequest: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409, RecordInvalid: 422,
          TooManyAttempts: 429}

HTTP_CODES = {400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "validation",
              429: "rate_limited", 500: "internal"}

SESSION_EXPIRED = Message("session_expired")


def _http_message(exc: HTTPException) -> Message:
    """werkzeug's own texts are English: the usual HTTP errors get ours, in the caller's language."""
    if isinstance(exc, CSRFError):
        return Message("csrf")
    if exc.code in (404, 413, 415):
        return Message(f"http_{exc.code}")
    if exc.code == 405:
        return Message("http_405", {"method": request.method})
    return Message("http_error", {"status": exc.code})


def error_response(code: str, message: str, status: int, fields: dict | None = None, **extra):
    body = {"code": code, "message": message, **extra}
    if fields is not None:
        body["fields"] = fields
    body["request_id"] = request_id()
    response = jsonify({"error": body})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="crm"'
    return response


def _is_page() -> bool:
    """Browser pages (login, front page, static files) get HTML errors; the API gets JSON."""
    return not (request.path == "/api" or request.path.startswith("/api/"))


def _html_error(status: int, title: str, message: str) -> Response:
    """A self-contained page: no template, no current user, so it renders even when the database is down."""
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f'<body><h1>{escape(title)}</h1><p role="alert">{escape(message)}</p>'
            f'<p>Request <code>{escape(request_id())}</code> · <a href="/">Home</a></p></body></html>')
    return Response(page, status=status, mimetype="text/html")


def _record_error(exc: RecordError):
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    lang = locale()
    fields = None
    extra = {}
    if isinstance(exc, RecordInvalid | FieldsForbidden):
        fields = {name: [m.render(lang) for m in messages] for name, messages in sorted(exc.fields.items())}
    if isinstance(exc, Duplicate) and exc.existing_id:
        extra["existing_id"] = exc.existing_id
    if _is_page():
        return _html_error(status, str(status), exc.message.render(lang))
    return error_response(exc.code, exc.message.render(lang), status, fields, **extra)


def _http_error(exc: HTTPException):
    message = _http_message(exc).render(locale())
    if _is_page():
        return _html_error(exc.code or 500, f"{exc.code} {exc.name}", message)
    return error_response(HTTP_CODES.get(exc.code, "error"), message, exc.code)


def _csrf_error(exc: CSRFError):
    """An expired or missing CSRF token on the login form: show the form again (with a fresh token)."""
    if request.endpoint == "session_auth.login":
        from .session_auth import LoginForm
        flash(SESSION_EXPIRED.render(locale()), "error")
        return render_template("login.html", form=LoginForm(formdata=None)), 400
    return _http_error(exc)


def _unhandled(exc: Exception):
    rid = request_id()
    log.error("unhandled exception", exc_info=exc,
              extra={"fields": {"request_id": rid, "method": request.method, "path": request.path,
                                "exc_type": f"{type(exc).__module__}.{type(exc).__qualname__}"}})
    message = Message("internal_error", {"request_id": rid}).render(locale())
    if _is_page():
        return _html_error(500, "Internal error", message)
    return error_response("internal", message, 500)


def register(app: Flask) -> None:
    app.register_error_handler(RecordError, _record_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
