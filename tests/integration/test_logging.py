"""Operations: request ids, one log line per request, logged 500s, refused logins, HTML errors on pages."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gunicorn.config import KNOWN_SETTINGS

from crm_platform.installation import Installation, Settings
from crm_platform.logs import LogfmtFormatter

REQUEST_LOGGER, AUTH_LOGGER, ERROR_LOGGER = "crm_platform.web.requestlog", "crm_platform.web.auth", "crm_platform.web.errors"


@pytest.fixture
def logs(caplog):
    """``logs(logger)`` → the records that logger emitted (INFO and up), since the last ``logs.clear()``."""
    caplog.set_level(logging.INFO)

    def of(name: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == name]
    of.clear = caplog.clear
    return of


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_each_request_logs_one_line_with_id_user_status_and_duration(client, auth, org, logs):
    headers = auth("rep")
    logs.clear()
    response = client.get("/api/me", headers=headers)
    assert response.status_code == 200
    [record] = logs(REQUEST_LOGGER)
    request_id = response.headers["X-Request-ID"]
    assert record.levelname == "INFO" and record.getMessage() == "request"
    fields = dict(record.fields)
    duration = fields.pop("duration_ms")
    assert fields == {"request_id": request_id, "method": "GET", "path": "/api/me", "status": 200,
                      "user": org["rep"].id}
    assert isinstance(duration, float) and duration >= 0
    line = LogfmtFormatter().format(record)
    assert "\n" not in line
    assert (f"level=INFO logger={REQUEST_LOGGER} msg=request request_id={request_id} method=GET path=/api/me "
            f"status=200 duration_ms={duration} user={org['rep'].id}") in line


def test_an_anonymous_request_is_logged_without_a_user(client, logs):
    response = client.get("/api/me")
    assert response.status_code == 401
    [record] = logs(REQUEST_LOGGER)
    assert (record.fields["status"], record.fields["user"]) == (401, None)
    assert LogfmtFormatter().format(record).endswith(" user=-")


def test_a_session_user_is_logged_once_the_page_looked_at_them(client, org, logs):
    token = csrf_from(client.get("/login").text)
    client.post("/login", data={"username": "rep", "password": "rep-password", "csrf_token": token})
    logs.clear()
    assert 'id="current-user">rep<' in client.get("/").text
    [record] = logs(REQUEST_LOGGER)
    assert (record.fields["path"], record.fields["user"]) == ("/", org["rep"].id)


def test_the_request_id_in_an_error_body_is_the_one_in_the_header_and_the_log(client, auth, logs):
    headers = auth("rep")
    logs.clear()
    response = client.get("/api/records/lead/no-such-id", headers=headers)
    assert response.status_code == 404
    error = response.json["error"]
    assert error["code"] == "not_found" and error["request_id"] == response.headers["X-Request-ID"]
    [record] = logs(REQUEST_LOGGER)
    assert (record.fields["request_id"], record.fields["status"]) == (error["request_id"], 404)


def test_every_kind_of_error_body_carries_the_request_id(client):
    for response in (client.get("/api/nowhere"), client.get("/api/me"),
                     client.post("/api/auth/token", data="{", content_type="application/json")):
        assert response.json["error"]["request_id"] == response.headers["X-Request-ID"], response.json


def test_a_safe_incoming_request_id_is_kept_and_an_unsafe_one_replaced(client, logs):
    kept = client.get("/api/me", headers={"X-Request-ID": "lb-7f3a.2:9_x"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a.2:9_x" == kept.json["error"]["request_id"]
    for hostile in ("two words", "x" * 65, "id\" forged=1", "-leading-dash", "é"):
        response = client.get("/api/me", headers={"X-Request-ID": hostile})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), hostile
    assert len({r.fields["request_id"] for r in logs(REQUEST_LOGGER)}) == 6


def test_a_hostile_path_cannot_break_or_forge_a_log_line(client, logs):
    client.get("/api/x%0Astatus=200%20user=admin")
    [record] = logs(REQUEST_LOGGER)
    line = LogfmtFormatter().format(record)
    assert "\n" not in line and ' path="/api/x\\nstatus=200 user=admin" ' in line
    assert line.count(" status=") == 1 and line.endswith(" user=-")


def test_an_unhandled_exception_is_a_logged_500_with_the_request_id(app, client, logs):
    def explode():
        raise RuntimeError("kaboom")
    app.add_url_rule("/api/test-explode", "test_explode", explode)
    response = client.get("/api/test-explode")
    request_id = response.headers["X-Request-ID"]
    assert response.status_code == 500
    assert response.json == {"error": {"code": "internal", "message": f"Internal error (request {request_id}).",
                                       "request_id": request_id}}
    [error] = logs(ERROR_LOGGER)
    assert error.levelname == "ERROR" and error.getMessage() == "unhandled exception"
    assert error.fields["request_id"] == request_id and error.exc_info[0] is RuntimeError
    line = LogfmtFormatter().format(error)
    assert "\n" not in line and "RuntimeError: kaboom" in line and 'exc="Traceback' in line
    [request] = logs(REQUEST_LOGGER)
    assert (request.levelname, request.fields["status"], request.fields["request_id"]) == ("WARNING", 500, request_id)


def test_an_unhandled_exception_on_a_page_is_an_html_500(app, client, logs):
    def explode():
        raise KeyError("secret detail")
    app.add_url_rule("/test-explode", "test_explode_page", explode)
    response = client.get("/test-explode")
    request_id = response.headers["X-Request-ID"]
    assert (response.status_code, response.mimetype) == (500, "text/html")
    assert f"Internal error (request {request_id})" in response.text and "secret detail" not in response.text
    [error] = logs(ERROR_LOGGER)
    assert error.fields["request_id"] == request_id


def test_pages_answer_their_errors_in_html_and_the_api_in_json(client):
    page = client.get("/no-such-page")
    assert (page.status_code, page.mimetype) == (404, "text/html")
    assert page.headers["X-Request-ID"] in page.text
    api = client.get("/api/no-such-thing")
    assert (api.status_code, api.json["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize("username, logged", [("rep", repr("rep")), ("x" * 500, repr("x" * 100)),
                                              ("a\nforged=1", repr("a\nforged=1"))],
                         ids=["plain", "truncated", "newline"])
def test_a_refused_api_login_is_a_warning_with_the_username_and_address(client, org, logs, username, logged):
    response = client.post("/api/auth/token", json={"username": username, "password": "wrong"})
    assert response.status_code == 401
    [record] = logs(AUTH_LOGGER)
    assert (record.levelname, record.getMessage()) == ("WARNING", "login refused")
    assert record.fields == {"request_id": response.headers["X-Request-ID"], "status": 401, "username": logged,
                             "address": "127.0.0.1"}
    assert "\n" not in LogfmtFormatter().format(record)


def test_a_locked_out_login_is_a_warning_too_and_a_good_one_is_not(client, org, logs):
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200
    assert logs(AUTH_LOGGER) == []
    for _ in range(6):
        last = client.post("/api/auth/token", json={"username": "rep", "password": "wrong"})
    assert last.status_code == 429
    assert [r.fields["status"] for r in logs(AUTH_LOGGER)] == [401] * 5 + [429]


def test_a_refused_login_on_the_login_page_is_a_warning(client, org, logs):
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": "rep", "password": "wrong", "csrf_token": token})
    assert response.status_code == 401
    [record] = logs(AUTH_LOGGER)
    assert (record.fields["username"], record.fields["status"]) == (repr("rep"), 401)


def test_a_login_form_left_open_across_a_restart_is_shown_again_with_a_message(app, client, org):
    stale = csrf_from(client.get("/login").text)
    app.config["SECRET_KEY"] = "a different key, as after a restart without a persisted one"
    response = client.post("/login", data={"username": "rep", "password": "rep-password", "csrf_token": stale})
    assert (response.status_code, response.mimetype) == (400, "text/html")
    assert "Your session expired; please sign in again." in response.text
    fresh = csrf_from(response.text)
    retried = client.post("/login", data={"username": "rep", "password": "rep-password", "csrf_token": fresh})
    assert retried.status_code == 302


def test_a_login_post_without_a_csrf_token_shows_the_form_not_json(client, org):
    response = client.post("/login", data={"username": "rep", "password": "rep-password"})
    assert (response.status_code, response.mimetype) == (400, "text/html")
    assert "Your session expired; please sign in again." in response.text and 'name="csrf_token"' in response.text


def test_gunicorn_serves_the_app_factory_and_logs_requests_in_the_same_format(tmp_path):
    """The production command from docs/operations.md, for real: one worker, SQLite, the repo's gunicorn.conf.py."""
    root = Path(__file__).resolve().parents[2]
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    Installation.open(Settings(database_url=url)).migrate()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_INSTANCE_PATH": str(tmp_path / "instance"),
           "CRM_LOG_LEVEL": "INFO", "CRM_PACKS": "base"}
    # recent gunicorn versions open a control socket, by default one per user: give this one its own
    own_socket = ["--control-socket", str(tmp_path / "ctl")] if any(
        s.name == "control_socket" for s in KNOWN_SETTINGS) else []
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(root / "gunicorn.conf.py"), "-w", "1",
                               "-b", f"127.0.0.1:{port}", *own_socket, "crm_platform.web:create_app()"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/me", timeout=2)
            except urllib.error.HTTPError as exc:
                response = exc
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.3)
        request_id = response.headers["X-Request-ID"]
        assert response.code == 401 and f'"request_id":"{request_id}"' in response.read().decode()
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    lines = stderr.splitlines()
    assert any(line.startswith("ts=") and " logger=gunicorn.error msg=\"Booting worker" in line for line in lines), stderr
    [line] = [line for line in lines if f"request_id={request_id}" in line]
    assert f" level=INFO logger={REQUEST_LOGGER} msg=request " in line and " path=/api/me status=401 " in line


@pytest.fixture
def root_logger():
    """The root logger, restored after the test (configure_logging changes process-wide state)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("setting, level", [(None, logging.INFO), ("warning", logging.WARNING),
                                            ("DEBUG", logging.DEBUG), ("nonsense", logging.INFO)])
def test_the_level_comes_from_crm_log_level_and_configuring_twice_adds_one_handler(
        root_logger, monkeypatch, setting, level):
    from crm_platform.logs import StderrHandler, configure_logging
    if setting is None:
        monkeypatch.delenv("CRM_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("CRM_LOG_LEVEL", setting)
    others = [h for h in root_logger.handlers if not isinstance(h, StderrHandler)]
    assert configure_logging() == level and configure_logging() == level
    assert root_logger.level == level
    assert len([h for h in root_logger.handlers if isinstance(h, StderrHandler)]) == 1
    assert [h for h in root_logger.handlers if not isinstance(h, StderrHandler)] == others  # a test runner's stay


def test_a_configured_process_writes_one_logfmt_line_per_event_to_stderr(root_logger, capsys):
    from crm_platform.logs import configure_logging
    configure_logging("INFO")
    logging.getLogger("crm_platform.test").warning("odd value", extra={"fields": {"value": 'a "b"\nc', "n": 3}})
    [line] = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=WARNING logger=crm_platform.test '
                        r'msg="odd value" value="a \\"b\\"\\nc" n=3', line), line
