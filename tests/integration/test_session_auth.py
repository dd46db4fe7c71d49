"""Browser sessions (login/logout pages, CSRF, cookie flags) and login rate limiting."""

from __future__ import annotations

import dataclasses
import re
import time

import limits


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def log_in(client, username, password):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_login_page_signs_in_and_the_page_shows_who_and_what_they_may_see(client, org):
    response = log_in(client, "marketing", "marketing-password")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").text
    assert 'id="current-user">marketing<' in page
    assert "<code>lead</code>" in page
    assert "<code>opportunity</code>" not in page  # marketing has no grant on opportunities


def test_login_without_a_csrf_token_is_refused(client, org):
    response = client.post("/login", data={"username": "rep", "password": "rep-password"})
    assert response.status_code == 400
    assert "current-user" not in client.get("/").text


def test_wrong_password_shows_an_error_and_does_not_sign_in(client, org):
    response = log_in(client, "rep", "not-the-password")
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert "current-user" not in client.get("/").text


def test_session_cookie_is_http_only_and_same_site(client, org):
    response = log_in(client, "rep", "rep-password")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_logout_needs_csrf_and_ends_the_session(client, org):
    log_in(client, "rep", "rep-password")
    assert client.post("/logout").status_code == 400
    assert "current-user" in client.get("/").text
    token = csrf_from(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert "current-user" not in client.get("/").text


def test_a_deactivated_users_session_ends(client, org, installation):
    log_in(client, "rep", "rep-password")
    installation.accounts.deactivate_user("rep")
    assert "current-user" not in client.get("/").text


def test_login_redirects_only_to_same_site_paths(client, org):
    token = csrf_from(client.get("/login").text)
    response = client.post("/login?next=https://evil.example/", data={
        "username": "rep", "password": "rep-password", "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_the_api_does_not_accept_the_session_cookie(client, org):
    log_in(client, "rep", "rep-password")
    assert client.get("/api/me").status_code == 401


def test_five_failed_logins_lock_the_username_even_with_the_right_password(client, org):
    for _ in range(5):
        assert client.post("/api/auth/token", json={"username": "rep", "password": "wrong"}).status_code == 401
    response = client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"})
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limited"
    # the login page shares the same counter
    assert log_in(client, "rep", "rep-password").status_code == 429
    # other users are not affected
    assert client.post("/api/auth/token", json={"username": "rep2", "password": "rep2-password"}).status_code == 200


def test_the_lock_lifts_when_the_window_passes(client, org, app):
    throttle = app.extensions["crm_login_throttle"]
    app.extensions["crm_login_throttle"] = dataclasses.replace(throttle, per_user=limits.parse("5 per 1 second"))
    for _ in range(5):
        assert client.post("/api/auth/token", json={"username": "rep", "password": "wrong"}).status_code == 401
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 429
    time.sleep(1.2)
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200


def test_failures_from_one_address_lock_that_address_only(client, org, app):
    throttle = app.extensions["crm_login_throttle"]
    app.extensions["crm_login_throttle"] = dataclasses.replace(throttle, per_address=limits.parse("3 per 15 minutes"))
    for name in ("a", "b", "c"):
        assert client.post("/api/auth/token", json={"username": name, "password": "wrong"}).status_code == 401
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 429
    other = {"REMOTE_ADDR": "10.9.8.7"}
    response = client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}, environ_base=other)
    assert response.status_code == 200


def test_x_forwarded_for_is_ignored_without_trusted_proxies(client, org, app):
    """Without CRM_PROXY_HOPS a client cannot pick its own address to dodge the per-address limit."""
    throttle = app.extensions["crm_login_throttle"]
    app.extensions["crm_login_throttle"] = dataclasses.replace(throttle, per_address=limits.parse("2 per 15 minutes"))
    for n in range(2):
        headers = {"X-Forwarded-For": f"203.0.113.{n}"}
        client.post("/api/auth/token", json={"username": "x", "password": "wrong"}, headers=headers)
    response = client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"},
                           headers={"X-Forwarded-For": "203.0.113.99"})
    assert response.status_code == 429


def test_behind_a_trusted_proxy_each_client_address_counts_alone(org, installation):
    """CRM_PROXY_HOPS=1: the proxy's X-Forwarded-For names the client, so one client's failures do not
    lock out everyone behind the same load balancer."""
    from crm_platform.web import create_app
    installation.settings = dataclasses.replace(installation.settings, proxy_hops=1)
    app = create_app(installation=installation)
    throttle = app.extensions["crm_login_throttle"]
    app.extensions["crm_login_throttle"] = dataclasses.replace(throttle, per_address=limits.parse("2 per 15 minutes"))
    client = app.test_client()
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(3):
        client.post("/api/auth/token", json={"username": "x", "password": "wrong"}, headers=attacker)
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"},
                       headers=attacker).status_code == 429
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"},
                       headers={"X-Forwarded-For": "198.51.100.4"}).status_code == 200


def test_a_successful_login_clears_the_failures_for_that_username(client, org):
    for _ in range(4):
        client.post("/api/auth/token", json={"username": "rep", "password": "wrong"})
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200
    for _ in range(4):
        client.post("/api/auth/token", json={"username": "rep", "password": "wrong"})
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200
