"""``GET /api/permissions/explain``: may a user do something, and why — and the CLI of the same name.

``?user=&entity=&action=[&id=][&field=]`` → ``{"user", "entity", "action", "id", "field", "allowed",
"reasons"}``. Anyone may ask about themselves; about someone else only from the top role level, or from
a higher level whose team subtree contains theirs (403 otherwise). The record named by ``id`` must be
readable by the caller (404 otherwise), so explaining never reveals that a record exists.
"""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from crm_platform.cli import main
from crm_platform.installation import Installation, Settings

URL = "/api/records"
EXPLAIN = "/api/permissions/explain"


@pytest.fixture
def records(installation, org):
    system = installation.records(None)

    def opportunity(owner, **extra):
        account = system.create("account", {"name": f"Account {uuid.uuid4().hex[:8]}", "owner": org[owner].id})
        return system.create("opportunity", {"name": "Deal", "account": account["id"], "owner": org[owner].id,
                                             "expected_close_date": "2026-06-30", "amount": 1000, **extra})
    return {
        "rep_open": opportunity("rep"),
        "rep_won": opportunity("rep", stage="won"),
        "rep2_open": opportunity("rep2"),
        "admin_open": opportunity("admin"),
        "pool_lead": system.create("lead", {"name": "Nobody's lead"}),
        "rep_lead": system.create("lead", {"name": "Rep's lead", "owner": org["rep"].id}),
        "rep2_lead": system.create("lead", {"name": "Rep2's lead", "owner": org["rep2"].id}),
    }


def explain(client, headers, **query):
    return client.get(EXPLAIN, query_string=query, headers=headers)


def answer(response) -> dict:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
    body = response.json
    assert set(body) == {"user", "entity", "action", "id", "field", "allowed", "reasons"}, body
    assert isinstance(body["allowed"], bool)
    assert body["reasons"] and all(isinstance(r, str) and r for r in body["reasons"])
    return body


def said(body: dict, *words: str) -> bool:
    """Whether one reason contains all the words (case-insensitive)."""
    return any(all(w.lower() in reason.lower() for w in words) for reason in body["reasons"])


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]


# -- about yourself -------------------------------------------------------------------------------------
def test_rep_may_read_their_own_opportunity_because_of_the_role_grant_and_ownership(client, auth, records):
    opp = records["rep_open"]["id"]
    body = answer(explain(client, auth("rep"), entity="opportunity", action="read", id=opp))
    assert body == {**body, "user": "rep", "entity": "opportunity", "action": "read", "id": opp, "field": None,
                    "allowed": True}
    assert said(body, "rep", "read", "opportunity", "own")  # the grant, with its scope
    assert said(body, "owns")  # ownership


def test_explaining_about_yourself_by_username_or_id_is_the_same(client, auth, org, records):
    rep = auth("rep")
    plain = answer(explain(client, rep, entity="opportunity", action="read", id=records["rep_open"]["id"]))
    by_name = answer(explain(client, rep, entity="opportunity", action="read", id=records["rep_open"]["id"],
                             user="rep"))
    by_id = answer(explain(client, rep, entity="opportunity", action="read", id=records["rep_open"]["id"],
                           user=org["rep"].id))
    assert plain == by_name == by_id


def test_a_hidden_field_is_not_readable_and_the_reason_says_hidden(client, auth, records):
    rep = auth("rep")
    for field in ("cost", "margin"):
        body = answer(explain(client, rep, entity="opportunity", action="read", id=records["rep_open"]["id"],
                              field=field))
        assert body["allowed"] is False and body["field"] == field
        assert said(body, field, "hidden")
    visible = answer(explain(client, rep, entity="opportunity", action="read", id=records["rep_open"]["id"],
                             field="amount"))
    assert visible["allowed"] is True and not said(visible, "hidden")


def test_a_read_only_field_may_be_read_but_not_updated(client, auth):
    rep = auth("rep")
    read = answer(explain(client, rep, entity="account", action="read", field="credit_limit"))
    update = answer(explain(client, rep, entity="account", action="update", field="credit_limit"))
    assert read["allowed"] is True
    assert update["allowed"] is False and said(update, "credit_limit", "read-only")


def test_updating_a_won_opportunity_is_refused_with_the_read_only_condition(client, auth, records):
    rep = auth("rep")
    won = answer(explain(client, rep, entity="opportunity", action="update", id=records["rep_won"]["id"]))
    assert won["allowed"] is False
    assert said(won, "read-only", "stage in ('won', 'lost')")
    still_open = answer(explain(client, rep, entity="opportunity", action="update", id=records["rep_open"]["id"]))
    assert still_open["allowed"] is True and not said(still_open, "read-only")


def test_an_action_the_role_lacks_is_refused_naming_the_scope(client, auth, records):
    body = answer(explain(client, auth("rep"), entity="opportunity", action="delete", id=records["rep_open"]["id"]))
    assert body["allowed"] is False and said(body, "delete", "none")


def test_a_pool_record_is_readable_because_of_the_public_pool(client, auth, records):
    body = answer(explain(client, auth("rep"), entity="lead", action="read", id=records["pool_lead"]["id"]))
    assert body["allowed"] is True and said(body, "public pool")
    claim = answer(explain(client, auth("rep"), entity="lead", action="update", id=records["pool_lead"]["id"]))
    assert claim["allowed"] is False  # seeing the pool is not owning the record


def test_a_supervisor_reads_a_team_record_because_of_the_team(client, auth, records):
    body = answer(explain(client, auth("supervisor"), entity="opportunity", action="update",
                          id=records["rep_open"]["id"]))
    assert body["allowed"] is True
    assert said(body, "team") and said(body, "Shanghai")


def test_a_shared_record_is_readable_because_of_the_sharing_rule(client, installation, auth, org, records):
    """rep's role shares opportunities of 1,000,000 or more (read-only) with reps in 'Key Accounts'."""
    installation.accounts.create_team("Key Accounts", "East")
    installation.accounts.create_user("kam", "kam-password", "rep", "Key Accounts")
    token = client.post("/api/auth/token", json={"username": "kam", "password": "kam-password"}).json["token"]
    kam = {"Authorization": f"Bearer {token}"}
    system = installation.records(None)
    big = system.create("opportunity", {"name": "Big", "account": records["rep_open"]["account"],
                                        "owner": org["rep"].id, "expected_close_date": "2026-06-30",
                                        "amount": 2000000})
    read = answer(explain(client, kam, entity="opportunity", action="read", id=big["id"]))
    assert read["allowed"] is True and said(read, "sharing rule", "key_account_opportunities")
    update = answer(explain(client, kam, entity="opportunity", action="update", id=big["id"]))
    assert update["allowed"] is False and not said(update, "sharing rule")  # shared for reading only
    # rep owns it and is not in Key Accounts: the admin asking about rep hears about ownership, not sharing
    about_rep = answer(explain(client, auth("admin"), user="rep", entity="opportunity", action="read", id=big["id"]))
    assert about_rep["allowed"] is True and not said(about_rep, "sharing rule")
    error(explain(client, kam, entity="opportunity", action="read", id=records["rep_open"]["id"]), 404, "not_found")


def test_the_answer_matches_what_the_api_then_does(client, auth, records):
    """explain is worth nothing if it disagrees with enforcement: ask, then try."""
    rep = auth("rep")
    cases = [("opportunity", "rep_open", "read"), ("opportunity", "rep_won", "read"), ("lead", "pool_lead", "read"),
             ("lead", "rep_lead", "read"), ("opportunity", "rep_open", "update"),
             ("opportunity", "rep_won", "update"), ("lead", "rep_lead", "update"), ("lead", "pool_lead", "update"),
             ("opportunity", "rep_open", "delete"), ("lead", "rep_lead", "delete")]
    for entity, key, action in cases:
        record = records[key]
        predicted = answer(explain(client, rep, entity=entity, action=action, id=record["id"]))["allowed"]
        path = f"{URL}/{entity}/{record['id']}"
        if action == "read":
            response = client.get(path, headers=rep)
        elif action == "update":
            response = client.patch(path, json={"version": record["version"], "name": "Renamed"}, headers=rep)
        else:
            response = client.delete(path, headers=rep)
        assert (response.status_code < 300) is predicted, (entity, key, action, response.status_code)
        assert response.status_code in (200, 204, 403), (entity, key, action, response.status_code)


# -- about others ------------------------------------------------------------------------------------------
def test_a_manager_may_ask_about_a_rep_in_their_subtree(client, auth, org, records):
    manager = auth("manager")
    body = answer(explain(client, manager, user="rep", entity="opportunity", action="read",
                          id=records["rep_open"]["id"]))
    assert body["user"] == "rep" and body["allowed"] is True and said(body, "rep", "own")
    # the answer is about the rep, not the manager: the rep may not see cost, the manager may
    assert answer(explain(client, manager, user="rep", entity="opportunity", action="read",
                          field="cost"))["allowed"] is False
    assert answer(explain(client, manager, entity="opportunity", action="read", field="cost"))["allowed"] is True
    assert answer(explain(client, manager, user=org["rep2"].id, entity="opportunity", action="read",
                          id=records["rep_open"]["id"]))["allowed"] is False  # rep2 does not own it


@pytest.mark.parametrize("caller,subject", [
    ("rep", "manager"), ("rep", "rep2"), ("rep", "supervisor"), ("rep", "admin"), ("supervisor", "rep2"),
    ("supervisor", "manager"), ("manager", "admin"), ("marketing", "manager"), ("manager", "marketing")])
def test_asking_about_someone_senior_equal_or_outside_your_subtree_is_403(client, auth, caller, subject):
    response = explain(client, auth(caller), user=subject, entity="lead", action="read")
    error(response, 403, "forbidden")
    assert "reasons" not in response.get_data(as_text=True)


@pytest.mark.parametrize("caller,subject", [("supervisor", "rep"), ("manager", "rep2"), ("manager", "supervisor"),
                                            ("marketing", "rep")])
def test_asking_about_a_junior_in_your_subtree_is_allowed(client, auth, caller, subject):
    assert answer(explain(client, auth(caller), user=subject, entity="lead", action="read"))["user"] == subject


@pytest.mark.parametrize("subject", ["rep", "rep2", "supervisor", "manager", "marketing", "admin"])
def test_the_admin_may_ask_about_anyone(client, auth, records, subject):
    body = answer(explain(client, auth("admin"), user=subject, entity="opportunity", action="read",
                          id=records["rep_open"]["id"]))
    assert body["user"] == subject
    assert body["allowed"] is (subject in ("rep", "supervisor", "manager", "admin"))


def test_admin_explaining_a_record_outside_the_subjects_team_says_why_not(client, auth, records):
    body = answer(explain(client, auth("admin"), user="supervisor", entity="opportunity", action="read",
                          id=records["rep2_open"]["id"]))
    assert body["allowed"] is False and said(body, "Hangzhou") and said(body, "not")


# -- what explain must not reveal, and bad requests ------------------------------------------------------
def test_a_record_the_caller_cannot_read_is_404_like_a_missing_one(client, auth, records):
    cases = [("rep2", {}, records["rep_open"]["id"]),  # about themselves
             ("rep", {}, records["rep2_lead"]["id"]),
             ("manager", {"user": "rep"}, records["admin_open"]["id"]),  # the subject's record is not the caller's
             ("supervisor", {"user": "rep"}, records["rep2_open"]["id"])]
    for caller, extra, record_id in cases:
        entity = "lead" if record_id == records["rep2_lead"]["id"] else "opportunity"
        real = explain(client, auth(caller), entity=entity, action="read", id=record_id, **extra)
        fake_id = str(uuid.uuid4())
        fake = explain(client, auth(caller), entity=entity, action="read", id=fake_id, **extra)
        error(real, 404, "not_found")
        def shown(response, value):  # the body but for the id asked about and the per-request id
            return response.get_data(as_text=True).replace(value, "<ID>").replace(
                response.headers["X-Request-ID"], "<REQUEST>")
        assert shown(real, record_id) == shown(fake, fake_id)
        for field in ("name", "cost") if entity == "opportunity" else ("name",):
            error(explain(client, auth(caller), entity=entity, action="update", id=record_id, field=field, **extra),
                  404, "not_found")


def test_an_entity_the_caller_cannot_see_is_404(client, auth):
    error(explain(client, auth("marketing"), entity="opportunity", action="read"), 404, "not_found")
    error(explain(client, auth("marketing"), user="rep", entity="opportunity", action="read"), 404, "not_found")
    error(explain(client, auth("rep"), entity="spaceship", action="read"), 404, "not_found")


@pytest.mark.parametrize("query", [
    {"entity": "opportunity", "action": "fly"}, {"entity": "opportunity", "action": "READ"},
    {"entity": "opportunity", "action": "read", "field": "no_such_field"},
    {"entity": "opportunity", "action": "read", "field": "cost'--"},
    {"entity": "opportunity"}, {"action": "read"}, {}, {"entity": "", "action": "read"},
    {"entity": "opportunity", "action": ""}])
def test_a_bad_question_is_400(client, auth, query):
    error(explain(client, auth("rep"), **query), 400, "malformed")


def test_an_unknown_user_is_404_for_the_admin(client, auth):
    error(explain(client, auth("admin"), user="nobody", entity="lead", action="read"), 404, "not_found")


def test_explain_needs_a_token(client, org):
    response = client.get(EXPLAIN, query_string={"entity": "lead", "action": "read"})
    error(response, 401, "unauthorized")


def test_a_system_field_can_be_explained(client, auth):
    body = answer(explain(client, auth("rep"), entity="opportunity", action="update", field="owner"))
    assert body["field"] == "owner"


# -- the CLI ---------------------------------------------------------------------------------------------
@pytest.fixture
def crm(tmp_path, monkeypatch):
    """``crm(...)`` → the click Result, against a SQLite file with a rep and two of the rep's opportunities."""
    for name in ("CRM_PACKS", "CRM_PACKS_PATH", "CRM_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, list(args), env={"CRM_DATABASE_URL": url,
                                                    "CRM_INSTANCE_PATH": str(tmp_path / "instance")})
    assert run("init").exit_code == 0
    inst = Installation.open(Settings(database_url=url))
    inst.accounts.create_team("Shanghai")
    rep = inst.accounts.create_user("rep", "rep-password", "rep", "Shanghai")
    system = inst.records(None)
    account = system.create("account", {"name": "Acme", "owner": rep})
    run.open = system.create("opportunity", {"name": "Open", "account": account["id"], "owner": rep,
                                             "expected_close_date": "2026-06-30", "amount": 10})
    run.won = system.create("opportunity", {"name": "Won", "account": account["id"], "owner": rep,
                                            "expected_close_date": "2026-06-30", "amount": 10, "stage": "won"})
    inst.db.dispose()
    return run


def test_the_cli_explains_allowed_and_denied_with_reasons_and_exit_codes(crm):
    assert "permissions" in getattr(main, "commands", {}), "crm has no `permissions` group"
    allowed = crm("permissions", "explain", "--user", "rep", "--entity", "opportunity", "--action", "read",
                  "--id", crm.open["id"])
    assert allowed.exit_code == 0, allowed.output
    assert "ALLOWED" in allowed.output and "DENIED" not in allowed.output
    assert "own" in allowed.output  # the reasons are printed

    hidden = crm("permissions", "explain", "--user", "rep", "--entity", "opportunity", "--action", "read",
                 "--id", crm.open["id"], "--field", "cost")
    assert hidden.exit_code == 1, hidden.output
    assert "DENIED" in hidden.output and "hidden" in hidden.output

    won = crm("permissions", "explain", "--user", "rep", "--entity", "opportunity", "--action", "update",
              "--id", crm.won["id"])
    assert won.exit_code == 1 and "DENIED" in won.output and "stage in ('won', 'lost')" in won.output

    no_record = crm("permissions", "explain", "--user", "rep", "--entity", "opportunity", "--action", "read")
    assert no_record.exit_code == 0 and "ALLOWED" in no_record.output


def test_the_cli_reports_bad_questions_as_errors_not_as_answers(crm):
    for args in (["--user", "nobody", "--entity", "opportunity", "--action", "read"],
                 ["--user", "rep", "--entity", "spaceship", "--action", "read"],
                 ["--user", "rep", "--entity", "opportunity", "--action", "read", "--id", str(uuid.uuid4())],
                 ["--user", "rep", "--entity", "opportunity", "--action", "read", "--field", "no_such_field"],
                 ["--user", "rep", "--entity", "opportunity", "--action", "fly"]):
        result = crm("permissions", "explain", *args)
        assert result.exit_code not in (0, 1), (args, result.exit_code, result.output)
        assert "ALLOWED" not in result.output and "DENIED" not in result.output, (args, result.output)


def test_below_the_top_level_an_unknown_user_looks_like_one_you_may_not_ask_about(client, auth, org):
    """A manager cannot tell whether a username exists by asking explain about it."""
    unknown = explain(client, auth("manager"), user="nobody-here", entity="lead", action="read")
    existing = explain(client, auth("manager"), user="admin", entity="lead", action="read")
    def shown(response):
        return response.status_code, {k: v for k, v in response.json["error"].items() if k != "request_id"}
    assert shown(unknown) == shown(existing)
    assert unknown.status_code == 403
