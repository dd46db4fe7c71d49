"""Request ids and the request log: one line per request, a warning per refused login.

Every request gets an id: the caller's ``X-Request-ID`` if it is a short safe token (a proxy's or a
load balancer's id, so one id follows the request across systems), else a fresh one. It is on
``flask.g.request_id``, in the ``X-Request-ID`` response header and in every error body
(``web/errors.py``), so a user's "request 3f2a…" finds the log line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

log = logging.getLogger(__name__)
auth_log = logging.getLogger("crm_platform.web.auth")

HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

#: the endpoints whose 401/429 answers are refused logins (bearer token issue, the login form)
LOGIN_ENDPOINTS = frozenset({"api_auth.issue_token", "session_auth.login"})
REFUSED = frozenset({401, 429})


def request_id() -> str:
    """This request's id (made on first use: an error raised before any view still has one)."""
    if "request_id" not in g:
        incoming = request.headers.get(HEADER, "")
        g.request_id = incoming if _SAFE_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.setdefault("request_started", time.perf_counter())
    return g.request_id


def _start() -> None:
    g.request_started = time.perf_counter()
    request_id()


def _user_id() -> str | None:
    """Who made the request, if it authenticated — without loading a session user just to log it."""
    actor = g.get("actor")
    if actor is not None:
        return actor.id
    session_user = g.get("_login_user")  # set by Flask-Login only if the request looked at current_user
    if session_user is not None and getattr(session_user, "is_authenticated", False):
        return session_user.get_id()
    return None


def _attempted_username() -> str:
    if request.is_json:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    else:
        name = request.form.get("username")
    return repr(name[:100]) if isinstance(name, str) else repr(None)


def _finish(response: Response) -> Response:
    rid = request_id()
    response.headers[HEADER] = rid
    status = response.status_code
    started = g.get("request_started", time.perf_counter())
    fields = {"request_id": rid, "method": request.method, "path": request.path, "status": status,
              "duration_ms": round((time.perf_counter() - started) * 1000, 1), "user": _user_id()}
    log.log(logging.WARNING if status >= 500 else logging.INFO, "request", extra={"fields": fields})
    if status in REFUSED and request.method == "POST" and request.endpoint in LOGIN_ENDPOINTS:
        auth_log.warning("login refused", extra={"fields": {
            "request_id": rid, "status": status, "username": _attempted_username(),
            "address": request.remote_addr}})
    return response


def init_app(app: Flask) -> None:
    """Give every request an id and a log line. Registered first so the id exists before any other
    ``before_request`` hook (CSRF, rate limits) can refuse the request."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
