"""Browser sessions (login/logout pages, CSRF, cookie flags) and login rate limiting."""

from __future__ import annotations

import re

import sqlalchemy as sa


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


def test_the_lock_lifts_when_the_window_passes(client, org, installation):
    for _ in range(5):
        client.post("/api/auth/token", json={"username": "rep", "password": "wrong"})
    failures = installation.runtime.tables["login_failures"]
    with installation.db.begin() as conn:  # age the failures past the 15-minute window
        rows = conn.execute(sa.select(failures.c.id, failures.c.at)).all()
        for row in rows:
            conn.execute(failures.update().where(failures.c.id == row.id).values(at=row.at.replace(year=row.at.year - 1)))
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200


def test_a_successful_login_clears_the_failures_for_that_username(client, org):
    for _ in range(4):
        client.post("/api/auth/token", json={"username": "rep", "password": "wrong"})
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200
    for _ in range(4):
        client.post("/api/auth/token", json={"username": "rep", "password": "wrong"})
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200
