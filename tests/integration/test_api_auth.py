"""HTTP API: getting a bearer token, using it, losing it (DESIGN §6, "HTTP API")."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("org")


def login(client, username: str, password: str):
    return client.post("/api/auth/token", json={"username": username, "password": password})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response, message: str | None = None) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.json["error"]["code"] == "unauthorized"
    assert response.json["error"]["message"]
    if message is not None:
        assert response.json["error"]["message"] == message


def test_the_right_password_gives_a_token_that_identifies_the_user(client, org):
    response = login(client, "rep", "rep-password")

    assert response.status_code == 200
    assert set(response.json) == {"token"}
    token = response.json["token"]
    assert isinstance(token, str) and len(token) >= 20
    me = client.get("/api/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json["username"] == "rep"
    assert me.json["id"] == org["rep"].id


def test_each_login_gives_a_different_token(client):
    first = login(client, "rep", "rep-password").json["token"]
    second = login(client, "rep", "rep-password").json["token"]

    assert first != second
    assert client.get("/api/me", headers=bearer(first)).status_code == 200
    assert client.get("/api/me", headers=bearer(second)).status_code == 200


def test_a_wrong_password_is_refused_with_401(client):
    response = login(client, "rep", "not-the-password")

    assert_unauthorized(response)
    assert "token" not in response.json


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(client):
    wrong_password = login(client, "rep", "not-the-password")
    unknown_user = login(client, "nobody-here", "rep-password")

    assert_unauthorized(unknown_user)
    def without_request_id(body):
        return {k: v for k, v in body["error"].items() if k != "request_id"}
    assert without_request_id(unknown_user.json) == without_request_id(wrong_password.json)


def test_another_users_password_does_not_work(client):
    assert_unauthorized(login(client, "rep", "rep2-password"))


def test_a_token_request_without_a_password_is_a_bad_request(client):
    response = client.post("/api/auth/token", json={"username": "rep"})

    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed"


def test_me_without_a_token_is_401_and_asks_for_a_bearer_token(client):
    response = client.get("/api/me")

    assert_unauthorized(response)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [
    "Token abc123",                 # another scheme
    "Bearer",                       # no token at all
    "Bearer    ",                   # blank token
    "Basic cmVwOnJlcC1wYXNzd29yZA==",  # rep:rep-password as basic auth
])
def test_a_malformed_authorization_header_is_401(client, header):
    assert_unauthorized(client.get("/api/me", headers={"Authorization": header}))


def test_a_token_sent_without_the_bearer_scheme_is_401(client):
    token = login(client, "rep", "rep-password").json["token"]

    assert_unauthorized(client.get("/api/me", headers={"Authorization": token}))


def test_a_garbage_token_is_401(client):
    assert_unauthorized(client.get("/api/me", headers=bearer("this-is-not-a-token-anyone-issued")))


def test_a_garbage_token_cannot_read_records(client):
    response = client.get("/api/records/lead", headers=bearer("garbage"))

    assert_unauthorized(response)
    assert "data" not in response.json


def test_records_need_a_token(client):
    assert_unauthorized(client.get("/api/records/lead"))
    assert_unauthorized(client.post("/api/records/lead", json={"name": "Ann"}))


def test_a_revoked_token_no_longer_works(client):
    token = login(client, "rep", "rep-password").json["token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200

    revoked = client.post("/api/auth/revoke", headers=bearer(token))

    assert revoked.status_code == 204
    assert_unauthorized(client.get("/api/me", headers=bearer(token)))
    assert_unauthorized(client.get("/api/records/lead", headers=bearer(token)))


def test_revoking_one_token_leaves_the_users_other_tokens_working(client):
    kept = login(client, "rep", "rep-password").json["token"]
    dropped = login(client, "rep", "rep-password").json["token"]

    assert client.post("/api/auth/revoke", headers=bearer(dropped)).status_code == 204

    assert client.get("/api/me", headers=bearer(kept)).status_code == 200
    assert_unauthorized(client.get("/api/me", headers=bearer(dropped)))


def test_revoking_needs_a_valid_token(client):
    assert_unauthorized(client.post("/api/auth/revoke"))
    assert_unauthorized(client.post("/api/auth/revoke", headers=bearer("garbage")))


def test_a_deactivated_users_token_stops_working(client, installation):
    token = login(client, "rep", "rep-password").json["token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200

    installation.accounts.deactivate_user("rep")

    assert_unauthorized(client.get("/api/me", headers=bearer(token)))
    assert_unauthorized(client.get("/api/records/lead", headers=bearer(token)))


def test_a_deactivated_user_cannot_log_in_and_gets_the_usual_message(client, installation):
    wrong_password = login(client, "rep2", "not-the-password")
    installation.accounts.deactivate_user("rep")

    response = login(client, "rep", "rep-password")

    assert_unauthorized(response, wrong_password.json["error"]["message"])


def test_deactivating_one_user_leaves_others_logged_in(client, installation):
    token = login(client, "rep2", "rep2-password").json["token"]

    installation.accounts.deactivate_user("rep")

    assert client.get("/api/me", headers=bearer(token)).json["username"] == "rep2"


@pytest.mark.parametrize("username, role", [("rep", "rep"), ("rep2", "rep"), ("manager", "manager"),
                                            ("admin", "admin")])
def test_me_returns_exactly_id_username_role_and_team(client, auth, org, username, role):
    response = client.get("/api/me", headers=auth(username))

    assert response.status_code == 200
    assert response.json == {"id": org[username].id, "username": username, "role": role,
                             "team": org[username].team}


def test_me_names_the_callers_team(client, auth, installation):
    assert client.get("/api/me", headers=auth("rep")).json["team"] == installation.accounts.team_id("Shanghai")
    assert client.get("/api/me", headers=auth("rep2")).json["team"] == installation.accounts.team_id("Hangzhou")
    assert client.get("/api/me", headers=auth("manager")).json["team"] == installation.accounts.team_id("East")


def test_zh_accept_language_gives_a_chinese_401_message(client):
    response = client.post("/api/auth/token", json={"username": "rep", "password": "wrong-password"},
                           headers={"Accept-Language": "zh"})

    assert_unauthorized(response, "用户名或密码错误。")
