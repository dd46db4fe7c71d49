"""Attacks on record-level security over HTTP: guessed ids (IDOR), mass assignment, SQL-looking
input, undefined roles, dead tokens, and role changes while a token is live.

The org (tests/conftest.py): Head Office → East → {Shanghai, Hangzhou}; rep (Shanghai) and rep2
(Hangzhou) are both reps (scope ``own``), so neither may see the other's records. A record one may not
see must be indistinguishable from one that does not exist: 404 (never 403), and the same body.
"""

from __future__ import annotations

import io
import re
import uuid

import pytest
import sqlalchemy as sa

from crm_platform.engine import ListQuery

URL = "/api/records"

#: One of rep's records per owned entity, with a field rep2 might try to change.
WRITABLE = {"lead": ("company", "Pwned"), "account": ("description", "Pwned"), "contact": ("title", "Pwned"),
            "opportunity": ("next_step", "Pwned"), "activity": ("subject", "Pwned"), "contract": ("notes", "Pwned"),
            "tender": ("buyer", "Pwned")}
POOLED = {"lead", "account"}


@pytest.fixture
def world(installation, org):
    """rep's records (made by the system), plus one account of rep2's for rep2 to link from."""
    system, rep = installation.records(None), org["rep"].id
    account = system.create("account", {"name": "Rep Account", "owner": rep, "phone": "021-11112222",
                                        "business_license_no": "91310000MA1FL0001X"})
    records = {"account": account}
    records["lead"] = system.create("lead", {"name": "Rep Lead", "owner": rep, "mobile": "13800000001"})
    records["contact"] = system.create("contact", {"last_name": "Wang", "account": account["id"], "owner": rep})
    records["opportunity"] = system.create("opportunity", {"name": "Rep Deal", "account": account["id"], "owner": rep,
                                                           "expected_close_date": "2026-06-30", "amount": 5000})
    records["activity"] = system.create("activity", {"subject": "Rep call", "owner": rep,
                                                     "opportunity": records["opportunity"]["id"]})
    records["contract"] = system.create("contract", {"name": "Rep Contract", "account": account["id"], "owner": rep,
                                                     "amount": 5000})
    records["tender"] = system.create("tender", {"title": "Rep Tender", "owner": rep})
    records["rep2_account"] = system.create("account", {"name": "Rep2 Account", "owner": org["rep2"].id})
    return records


def snapshot(installation, records: dict) -> dict:
    """Each record as stored, and its audit trail length: what an attack must not change."""
    system = installation.records(None)
    return {entity: (system.get(entity, r["id"]), len(system.history(entity, r["id"])))
            for entity, r in records.items() if entity in WRITABLE}


def normalised(response, *ids: str) -> tuple[int, str]:
    """Status and body with the probed ids masked, and without the per-request ``request_id`` (which
    differs on every answer and says nothing about the record)."""
    text = response.get_data(as_text=True)
    for record_id in ids:
        text = text.replace(record_id, "<ID>")
    return response.status_code, re.sub(r',?"request_id":\s*"[^"]*"', "", text)


def count(installation, entity: str) -> int:
    return installation.records(None).list(entity, ListQuery(limit=1, count=True))["paging"]["total"]


# -- IDOR: guessing ids ---------------------------------------------------------------------------------
def probes(client, headers, entity: str, record_id: str, other_user: str) -> dict:
    """Every endpoint that takes a record id, as someone who guessed the id."""
    field, value = WRITABLE[entity]
    base = f"{URL}/{entity}/{record_id}"
    explain = {"entity": entity, "id": record_id}
    return {
        "get": client.get(base, headers=headers),
        "get with If-None-Match": client.get(base, headers={**headers, "If-None-Match": '"1"'}),
        "patch": client.patch(base, json={"version": 1, field: value}, headers=headers),
        "patch with If-Match": client.patch(base, json={field: value}, headers={**headers, "If-Match": '"1"'}),
        "patch owner": client.patch(base, json={"version": 1, "owner": other_user}, headers=headers),
        "patch stale": client.patch(base, json={"version": 99, field: value}, headers=headers),
        "delete": client.delete(base, headers=headers),
        "delete with version": client.delete(base, json={"version": 1}, headers=headers),
        "history": client.get(f"{base}/history", headers=headers),
        "claim": client.post(f"{base}/claim", headers=headers),
        "release": client.post(f"{base}/release", headers=headers),
        "assign to me": client.post(f"{base}/assign", json={"owner": other_user}, headers=headers),
        "assign to pool": client.post(f"{base}/assign", json={"owner": None}, headers=headers),
        "explain read": client.get("/api/permissions/explain", query_string={**explain, "action": "read"},
                                   headers=headers),
        "explain update": client.get("/api/permissions/explain", query_string={**explain, "action": "update"},
                                     headers=headers),
        "explain delete field": client.get("/api/permissions/explain", headers=headers,
                                           query_string={**explain, "action": "delete", "field": field}),
    }


@pytest.mark.parametrize("entity", sorted(WRITABLE))
def test_rep2_guessing_the_id_of_a_rep_record_gets_404_on_every_endpoint(client, auth, org, world, installation,
                                                                         entity):
    rep2 = auth("rep2")
    before = snapshot(installation, world)
    real_id, fake_id = world[entity]["id"], str(uuid.uuid4())

    real = probes(client, rep2, entity, real_id, org["rep2"].id)
    fake = probes(client, rep2, entity, fake_id, org["rep2"].id)

    for name, response in real.items():
        assert response.status_code != 403, (name, response.json)
        if name in ("claim", "release") and entity not in POOLED:
            assert response.status_code == 400 and response.json["error"]["code"] == "malformed", (name, response.json)
        else:
            assert response.status_code == 404, (name, response.status_code, response.get_data(as_text=True))
            assert response.json["error"]["code"] == "not_found"
        # indistinguishable from an id that does not exist
        assert normalised(response, real_id) == normalised(fake[name], fake_id), name
    assert snapshot(installation, world) == before

    # control: the owner reaches the same record through the same endpoints
    rep = auth("rep")
    assert client.get(f"{URL}/{entity}/{real_id}", headers=rep).status_code == 200
    assert client.get(f"{URL}/{entity}/{real_id}/history", headers=rep).status_code == 200


def test_ids_that_look_like_sql_are_just_unknown_ids(client, auth, world):
    rep = auth("rep")
    for bogus in ("' OR '1'='1", "1 OR 1=1", "%", "_", "*", "1; DROP TABLE lead; --", world["lead"]["id"] + "' --"):
        path = f"{URL}/lead/{bogus.replace('%', '%25')}"
        for response in (client.get(path, headers=rep), client.get(f"{path}/history", headers=rep),
                         client.patch(path, json={"version": 1, "company": "x"}, headers=rep)):
            assert response.status_code == 404, (bogus, response.status_code, response.get_data(as_text=True))
    assert client.get(f"{URL}/lead/{world['lead']['id']}", headers=rep).json["company"] is None


def test_linking_to_a_record_rep2_cannot_read_is_422_exactly_like_a_missing_id(client, auth, world, installation):
    rep2 = auth("rep2")
    own_account = world["rep2_account"]["id"]
    cases = [
        ("opportunity", {"name": "Steal", "expected_close_date": "2026-06-30"}, "account", "account"),
        ("contact", {"last_name": "Li"}, "account", "account"),
        ("contract", {"name": "Steal", "account": own_account, "amount": 1}, "opportunity", "opportunity"),
        ("activity", {"subject": "Spy"}, "opportunity", "opportunity"),
        ("activity", {"subject": "Spy"}, "lead", "lead"),
        ("activity", {"subject": "Spy"}, "contact", "contact"),
        ("tender", {"title": "Spy"}, "account", "account"),
        ("account", {"name": "Child Co"}, "parent", "account"),
    ]
    counts = {entity: count(installation, entity) for entity in WRITABLE}
    for entity, body, field, target in cases:
        real_id, fake_id = world[target]["id"], str(uuid.uuid4())
        real = client.post(f"{URL}/{entity}", json={**body, field: real_id}, headers=rep2)
        fake = client.post(f"{URL}/{entity}", json={**body, field: fake_id}, headers=rep2)
        assert real.status_code == 422, (entity, field, real.json)
        assert list(real.json["error"]["fields"]) == [field], real.json
        assert normalised(real, real_id) == normalised(fake, fake_id), (entity, field)
    assert {entity: count(installation, entity) for entity in WRITABLE} == counts

    # the same through an update of rep2's own record
    mine = client.post(f"{URL}/contact", json={"last_name": "Zhao", "account": own_account}, headers=rep2).json
    real = client.patch(f"{URL}/contact/{mine['id']}", json={"version": 1, "account": world["account"]["id"]},
                        headers=rep2)
    fake_id = str(uuid.uuid4())
    fake = client.patch(f"{URL}/contact/{mine['id']}", json={"version": 1, "account": fake_id}, headers=rep2)
    assert real.status_code == 422
    assert normalised(real, world["account"]["id"]) == normalised(fake, fake_id)
    assert client.get(f"{URL}/contact/{mine['id']}", headers=rep2).json["account"] == own_account

    # control: the owner may link to it
    rep_link = client.post(f"{URL}/contact", json={"last_name": "Li", "account": world["account"]["id"]},
                           headers=auth("rep"))
    assert rep_link.status_code == 201


def test_a_duplicate_the_caller_cannot_see_is_reported_without_its_id(client, auth, world):
    rep, rep2 = auth("rep"), auth("rep2")
    for body in ({"name": "Rep Account"}, {"name": "Fresh", "phone": "021-11112222"},
                 {"name": "Fresh 2", "business_license_no": "91310000MA1FL0001X"}):
        unseen = client.post(f"{URL}/account", json=body, headers=rep2)
        assert unseen.status_code == 409 and unseen.json["error"]["code"] == "duplicate", unseen.json
        assert "existing_id" not in unseen.json["error"]
        assert world["account"]["id"] not in unseen.get_data(as_text=True)
        # control: the owner is told which record it is
        seen = client.post(f"{URL}/account", json=body, headers=rep)
        assert seen.status_code == 409 and seen.json["error"]["existing_id"] == world["account"]["id"]


def test_a_readable_record_the_caller_may_not_change_is_403_and_unchanged(client, auth, world, installation):
    """The other side of the 404 rule: once a record is visible, a refused action says so (403 forbidden)."""
    rep = auth("rep")
    won = installation.records(None).create("opportunity", {
        "name": "Closed deal", "account": world["account"]["id"], "owner": world["account"]["owner"],
        "expected_close_date": "2026-01-31", "amount": 100, "stage": "won"})
    before = snapshot(installation, {**world, "opportunity": won})
    for response in (client.delete(f"{URL}/opportunity/{world['opportunity']['id']}", headers=rep),  # no delete grant
                     client.delete(f"{URL}/contract/{world['contract']['id']}", headers=rep),
                     client.patch(f"{URL}/opportunity/{won['id']}", json={"version": 1, "next_step": "Reopen"},
                                  headers=rep),  # read-only once won
                     client.post(f"{URL}/opportunity/{world['opportunity']['id']}/assign",
                                 json={"owner": world["rep2_account"]["owner"]}, headers=rep),
                     client.patch(f"{URL}/account/{world['account']['id']}", json={"version": 1, "description": "x"},
                                  headers=auth("marketing"))):  # marketing reads accounts, may not update
        assert response.status_code == 403, (response.status_code, response.get_data(as_text=True))
        assert response.json["error"]["code"] == "forbidden"
    assert snapshot(installation, {**world, "opportunity": won}) == before


# -- mass assignment ----------------------------------------------------------------------------------
def test_rep_cannot_give_records_away_by_writing_owner(client, auth, org, world, installation):
    rep = auth("rep")
    leads = count(installation, "lead")
    for other in ("rep2", "manager", "admin", "supervisor"):
        response = client.post(f"{URL}/lead", json={"name": "Gift", "owner": org[other].id}, headers=rep)
        assert response.status_code == 403 and list(response.json["error"]["fields"]) == ["owner"], response.json
    assert count(installation, "lead") == leads
    before = snapshot(installation, world)
    for entity in ("lead", "opportunity", "account", "contract"):
        response = client.patch(f"{URL}/{entity}/{world[entity]['id']}",
                                json={"version": 1, "owner": org["rep2"].id}, headers=rep)
        assert response.status_code == 403 and list(response.json["error"]["fields"]) == ["owner"], response.json
        assert client.post(f"{URL}/{entity}/{world[entity]['id']}/assign", json={"owner": org["rep2"].id},
                           headers=rep).status_code == 403
    assert snapshot(installation, world) == before
    # control: naming oneself is fine
    assert client.post(f"{URL}/lead", json={"name": "Mine", "owner": org["rep"].id}, headers=rep).status_code == 201


SYSTEM_FIELDS = ["id", "created_at", "created_by", "updated_at", "updated_by", "team"]


def _system_value(org, name: str):
    return {"id": str(uuid.uuid4()), "created_at": "2001-01-01T00:00:00Z", "updated_at": "2001-01-01T00:00:00Z",
            "created_by": org["admin"].id, "updated_by": org["admin"].id, "team": org["rep2"].team}[name]


@pytest.mark.parametrize("name", SYSTEM_FIELDS)
def test_system_fields_in_a_body_are_refused_naming_them_and_change_nothing(client, auth, org, world, installation,
                                                                            name):
    rep = auth("rep")
    value = _system_value(org, name)
    leads = count(installation, "lead")
    created = client.post(f"{URL}/lead", json={"name": "Forged", name: value}, headers=rep)
    assert created.status_code == 403 and created.json["error"]["code"] == "forbidden", created.json
    assert list(created.json["error"]["fields"]) == [name], created.json
    assert count(installation, "lead") == leads

    before = snapshot(installation, world)
    lead = world["lead"]
    updated = client.patch(f"{URL}/lead/{lead['id']}", json={"version": lead["version"], name: value, "company": "X"},
                           headers=rep)
    assert updated.status_code == 403 and updated.json["error"]["code"] == "forbidden", updated.json
    assert list(updated.json["error"]["fields"]) == [name], updated.json
    assert snapshot(installation, world) == before


def test_writing_team_with_the_current_version_is_403_naming_team(client, auth, org, world, installation):
    rep = auth("rep")
    before = snapshot(installation, world)
    lead = world["lead"]
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": lead["version"], "team": org["rep2"].team},
                            headers=rep)
    assert snapshot(installation, world) == before
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "forbidden" and list(response.json["error"]["fields"]) == ["team"]


def test_version_in_a_patch_body_is_the_lock_not_a_field(client, auth, world, installation):
    rep = auth("rep")
    lead = world["lead"]
    path = f"{URL}/lead/{lead['id']}"
    stale = client.patch(path, json={"version": lead["version"] + 41, "company": "X"}, headers=rep)
    assert stale.status_code == 409 and stale.json["error"]["code"] == "stale_version"
    for bogus in ("1", 1.0, None, [1], True):
        response = client.patch(path, json={"version": bogus, "company": "X"}, headers=rep)
        assert response.status_code == 400, (bogus, response.json)
    assert installation.records(None).get("lead", lead["id"]) == lead

    response = client.patch(path, json={"version": lead["version"], "company": "Acme"}, headers=rep)
    assert response.status_code == 200
    assert response.json["version"] == lead["version"] + 1 and response.json["company"] == "Acme"
    # the old version no longer works: it was a lock, not a value that was written
    again = client.patch(path, json={"version": lead["version"], "company": "Other"}, headers=rep)
    assert again.status_code == 409
    # on create there is no lock: a version in the body is a system field and is refused
    leads = count(installation, "lead")
    created = client.post(f"{URL}/lead", json={"name": "Versioned", "version": 42}, headers=rep)
    assert created.status_code == 403 and list(created.json["error"]["fields"]) == ["version"], created.json
    assert count(installation, "lead") == leads


@pytest.mark.parametrize("entity,field,value", [
    ("opportunity", "cost", 1), ("opportunity", "margin", 1), ("contract", "cost", 1),
    ("contract", "paid_amount", 1), ("account", "credit_limit", 1), ("account", "last_visited_at",
                                                                     "2026-01-01T00:00:00Z")])
def test_hidden_and_read_only_fields_are_403_naming_them_and_change_nothing(client, auth, world, installation,
                                                                            entity, field, value):
    rep = auth("rep")
    record = world[entity]
    before = snapshot(installation, world)
    response = client.patch(f"{URL}/{entity}/{record['id']}",
                            json={"version": record["version"], field: value, WRITABLE[entity][0]: "Changed"},
                            headers=rep)
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "forbidden" and list(response.json["error"]["fields"]) == [field]
    assert snapshot(installation, world) == before

    counts = count(installation, entity)
    body = {"opportunity": {"name": "N", "account": world["account"]["id"], "expected_close_date": "2026-06-30"},
            "contract": {"name": "N", "account": world["account"]["id"], "amount": 1},
            "account": {"name": "N"}}[entity]
    response = client.post(f"{URL}/{entity}", json={**body, field: value}, headers=rep)
    assert response.status_code == 403 and list(response.json["error"]["fields"]) == [field], response.json
    assert count(installation, entity) == counts


# -- SQL-looking input -------------------------------------------------------------------------------------
LEAD_NAMES = ["Ann Lee", "100% natural", "snake_case", "O'Brien", "Back\\slash"]
NASTY = ["' OR '1'='1", "' OR 1=1 --", "1; DROP TABLE lead; --", "\" OR \"\"=\"", "%", "_", "%%", "\\", "'",
         "O'Brien", "*", "1) OR (1=1", "ann lee'; --"]


@pytest.fixture
def nasty_leads(client, auth):
    rep = auth("rep")
    for name in LEAD_NAMES:
        assert client.post(f"{URL}/lead", json={"name": name}, headers=rep).status_code == 201
    return rep


def _names(response) -> list[str]:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
    return sorted(r["name"] for r in response.json["data"])


@pytest.mark.parametrize("value", NASTY)
def test_filter_and_search_values_that_look_like_sql_are_data(client, nasty_leads, installation, value):
    rep = nasty_leads
    lower = value.lower()
    expected = {
        "eq": [n for n in LEAD_NAMES if n == value],
        "ne": [n for n in LEAD_NAMES if n != value],
        "contains": [n for n in LEAD_NAMES if lower in n.lower()],
        "startswith": [n for n in LEAD_NAMES if n.lower().startswith(lower)],
        "in": [n for n in LEAD_NAMES if n in value.split(",")],
    }
    for op, names in expected.items():
        response = client.get(f"{URL}/lead", query_string={f"filter[name][{op}]": value}, headers=rep)
        assert _names(response) == sorted(names), (op, value)
    needle = value.strip().lower()
    searched = _names(client.get(f"{URL}/lead", query_string={"q": value}, headers=rep))
    assert searched == sorted(n for n in LEAD_NAMES if needle in n.lower() or not needle), value

    # typed fields refuse what does not parse: 400, never a 500 and never a widened result
    for field in ("score", "created_at", "updated_at", "version"):
        response = client.get(f"{URL}/lead", query_string={f"filter[{field}]": value}, headers=rep)
        assert response.status_code == 400 and response.json["error"]["code"] == "malformed", (field, response.json)
    for field in ("owner", "email", "stage", "id"):
        response = client.get(f"{URL}/lead", query_string={f"filter[{field}]": value}, headers=rep)
        assert response.status_code in (200, 400), (field, response.status_code)
        if response.status_code == 200:
            assert response.json["data"] == [], (field, value)
    response = client.get(f"{URL}/lead", query_string={"sort": value}, headers=rep)
    assert response.status_code == 400

    # the table is still there, with every row
    assert sorted(r["name"] for r in installation.records(None).list("lead")["data"]) == sorted(LEAD_NAMES)


def test_sql_in_filter_field_names_and_operators_is_refused(client, nasty_leads):
    rep = nasty_leads
    for key in ("filter[name;drop]", "filter[name][eq;--]", "filter[name][eq] OR 1=1", "filter[name)]",
                "filter[NAME]", "filter[name][EQ]", "filter[name][like]"):
        response = client.get(f"{URL}/lead", query_string={key: "x"}, headers=rep)
        assert response.status_code == 400, (key, response.status_code)


TYPED = [("opportunity", "amount"), ("opportunity", "probability"), ("opportunity", "expected_close_date"),
         ("opportunity", "account"), ("opportunity", "version"), ("opportunity", "created_at"),
         ("opportunity", "stage"), ("opportunity", "opportunity_type"), ("lead", "score"), ("activity", "due_at"),
         ("activity", "duration_minutes"), ("contact", "birthday"), ("contact", "is_primary"), ("account", "tags")]
SQLISH = ["' OR '1'='1", "1; DROP TABLE lead; --", "%", "_"]


def _never_500(client, headers, entity, query) -> None:
    response = client.get(f"{URL}/{entity}", query_string=query, headers=headers)
    assert response.status_code in (200, 400), (query, response.status_code, response.get_data(as_text=True))
    matching = any(key.endswith(("[eq]", "[in]", "[contains]", "[startswith]")) for key in query)
    if response.status_code == 200 and any(v in SQLISH for v in query.values()) and matching:
        assert response.json["data"] == [], query  # a value that matches nothing, never a widened query
    else:
        assert response.status_code == 200 or response.json["error"]["code"] == "malformed"


@pytest.mark.parametrize("entity,field", TYPED)
def test_sql_looking_values_on_typed_fields_are_400_or_no_rows_never_500(client, auth, world, entity, field):
    admin = auth("admin")  # sees every row, so a widened query would show
    for op in ("eq", "ne", "lt", "lte", "gt", "gte", "in", "isnull"):
        for value in SQLISH:
            _never_500(client, admin, entity, {f"filter[{field}][{op}]": value})


NON_TEXT = [("opportunity", "amount"), ("opportunity", "expected_close_date"), ("lead", "score"),
            ("activity", "due_at"), ("contact", "birthday"), ("contact", "is_primary"), ("opportunity", "version"),
            ("opportunity", "created_at")]


def _refused(client, headers, entity, query) -> dict:
    response = client.get(f"{URL}/{entity}", query_string=query, headers=headers)
    assert response.status_code == 400, (query, response.status_code, response.get_data(as_text=True)[:300])
    assert response.json["error"]["code"] == "malformed"
    return response.json["error"]


@pytest.mark.parametrize("entity,field", NON_TEXT)
def test_contains_and_startswith_on_a_non_text_field_are_400_on_every_backend(client, auth, world, entity, field):
    """Found while writing these tests: PostgreSQL answered 500 (lower() of a number or date) where SQLite
    answered 200 — the same query must get the same answer everywhere, and never a 500."""
    admin = auth("admin")
    for op in ("contains", "startswith"):
        for value in ("5", "2026", "true", *SQLISH):
            error = _refused(client, admin, entity, {f"filter[{field}][{op}]": value})
            assert field in error["message"] and op in error["message"], error


def test_ordering_operators_on_a_boolean_field_are_400(client, auth, world):
    """Found while writing these tests: filter[is_primary][lt]=true was a 500 on both backends."""
    for op in ("lt", "lte", "gt", "gte"):
        for value in ("true", "false", "' OR '1'='1"):
            _refused(client, auth("admin"), "contact", {f"filter[is_primary][{op}]": value})
    assert client.get(f"{URL}/contact", query_string={"filter[is_primary]": "false"},
                      headers=auth("admin")).status_code == 200  # equality still works


def test_a_geo_fields_storage_columns_are_not_fields(client, auth, installation, org):
    """Found while writing these tests: filter[location_lat][gt]=31 reached SQL (500 on PostgreSQL, rows on
    SQLite). A geo field is filtered by its name or not at all; its columns are a storage detail."""
    installation.records(None).create("account", {"name": "Geo Co", "owner": org["rep"].id,
                                                  "location": {"lat": 31.2304, "lon": 121.4737}})
    rep = auth("rep")
    for query in ({"filter[location_lat][gt]": "31"}, {"filter[location_lon][lt]": "122"},
                  {"filter[location_lat]": "' OR '1'='1"}, {"filter[location_lat][in]": "1,2"}):
        field = next(iter(query))[len("filter["):].split("]")[0]
        assert "no such field" in _refused(client, rep, "account", query)["message"]
        unknown = {k.replace(field, "no_such_field"): v for k, v in query.items()}
        assert _refused(client, rep, "account", unknown)["message"].replace("no_such_field", field) == \
            _refused(client, rep, "account", query)["message"]
    for sort in ("-location_lat", "location_lon"):
        _refused(client, rep, "account", {"sort": sort})
    assert client.get(f"{URL}/account", query_string={"filter[location][isnull]": "false"},
                      headers=rep).status_code in (200, 400)


def test_a_sharing_rule_opens_exactly_the_matching_records_and_only_for_reading(client, installation, org, world):
    """rep's role shares opportunities of 1,000,000 or more, read-only, with reps in 'Key Accounts'."""
    installation.accounts.create_team("Key Accounts", "East")
    installation.accounts.create_user("kam", "kam-password", "rep", "Key Accounts")
    kam = _bearer(client, "kam", "kam-password")
    system = installation.records(None)
    big = system.create("opportunity", {"name": "Big", "account": world["account"]["id"], "owner": org["rep"].id,
                                        "expected_close_date": "2026-06-30", "amount": 1000000, "cost": 1})
    small = world["opportunity"]  # 5000: not shared

    listed = client.get(f"{URL}/opportunity", headers=kam).json["data"]
    assert [r["id"] for r in listed] == [big["id"]]
    assert client.get(f"{URL}/opportunity/{big['id']}", headers=kam).status_code == 200
    assert "cost" not in listed[0]  # shared with a rep: the rep's field rules still apply
    for response in (client.get(f"{URL}/opportunity/{small['id']}", headers=kam),
                     # the deal's account is not shared
                     client.get(f"{URL}/account/{world['account']['id']}", headers=kam),
                     client.patch(f"{URL}/opportunity/{small['id']}", json={"version": 1, "next_step": "x"},
                                  headers=kam)):
        assert response.status_code == 404, response.json
    refused = client.patch(f"{URL}/opportunity/{big['id']}", json={"version": 1, "next_step": "x"}, headers=kam)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"  # shared for reading only
    assert system.get("opportunity", big["id"]) == {**big, "cost": 1}

    # the share follows the data: below the threshold the record is gone again
    lowered = client.patch(f"{URL}/opportunity/{big['id']}", json={"version": 1, "amount": 999999.99},
                           headers=_bearer(client, "admin", "admin-password"))
    assert lowered.status_code == 200
    assert client.get(f"{URL}/opportunity/{big['id']}", headers=kam).status_code == 404
    assert client.get(f"{URL}/opportunity", headers=kam).json["data"] == []
    # ...and the rule is for reps in that team only: rep2 never saw it
    rep2 = _bearer(client, "rep2", "rep2-password")
    assert client.get(f"{URL}/opportunity/{big['id']}", headers=rep2).status_code == 404


# -- undefined roles, dead tokens, changed roles --------------------------------------------------------
def _set_user(installation, username: str, **values) -> None:
    users = installation.runtime.tables["users"]
    with installation.db.begin() as conn:
        assert conn.execute(users.update().where(users.c.username == username).values(**values)).rowcount == 1


def _bearer(client, username: str, password: str) -> dict:
    response = client.post("/api/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


def test_a_user_whose_role_is_not_defined_sees_nothing(client, installation, org, world):
    installation.accounts.create_user("ghost", "ghost-password", "rep", "Shanghai")
    _set_user(installation, "ghost", role="ghost")
    ghost = _bearer(client, "ghost", "ghost-password")  # still a valid login

    me = client.get("/api/me", headers=ghost)
    assert me.status_code == 200 and me.json["role"] == "ghost"
    entities = client.get("/api/meta/entities", headers=ghost)
    assert entities.status_code == 200 and entities.json["data"] == []
    for entity in ("lead", "account", "opportunity", "product", "contract"):
        assert client.get(f"/api/meta/entities/{entity}", headers=ghost).status_code == 404
        assert client.get(f"{URL}/{entity}", headers=ghost).status_code == 404
    for entity in WRITABLE:
        record_id = world[entity]["id"]
        for response in (client.get(f"{URL}/{entity}/{record_id}", headers=ghost),
                         client.get(f"{URL}/{entity}/{record_id}/history", headers=ghost),
                         client.patch(f"{URL}/{entity}/{record_id}", json={"version": 1}, headers=ghost),
                         client.delete(f"{URL}/{entity}/{record_id}", headers=ghost),
                         client.post(f"{URL}/{entity}/{record_id}/claim", headers=ghost),
                         client.get("/api/permissions/explain", headers=ghost,
                                    query_string={"entity": entity, "action": "read", "id": record_id})):
            assert response.status_code == 404, (entity, response.status_code, response.json)
    assert client.post(f"{URL}/lead", json={"name": "Ghost lead"}, headers=ghost).status_code == 404
    pooled = installation.records(None).create("lead", {"name": "Pool lead"})  # even the public pool is closed
    assert client.get(f"{URL}/lead/{pooled['id']}", headers=ghost).status_code == 404
    assert client.post(f"{URL}/lead/{pooled['id']}/claim", headers=ghost).status_code == 404
    assert installation.records(None).get("lead", pooled["id"])["owner"] is None


def _every_endpoint(client, headers, world, file_id):
    lead = world["lead"]["id"]
    base = f"{URL}/lead/{lead}"
    return {
        "me": client.get("/api/me", headers=headers),
        "entities": client.get("/api/meta/entities", headers=headers),
        "entity": client.get("/api/meta/entities/lead", headers=headers),
        "list": client.get(f"{URL}/lead", headers=headers),
        "list unknown entity": client.get(f"{URL}/spaceship", headers=headers),
        "create": client.post(f"{URL}/lead", json={"name": "Zombie"}, headers=headers),
        "get": client.get(base, headers=headers),
        "patch": client.patch(base, json={"version": 1, "company": "Zombie"}, headers=headers),
        "delete": client.delete(f"{URL}/activity/{world['activity']['id']}", headers=headers),
        "history": client.get(f"{base}/history", headers=headers),
        "claim": client.post(f"{base}/claim", headers=headers),
        "release": client.post(f"{base}/release", headers=headers),
        "assign": client.post(f"{base}/assign", json={"owner": None}, headers=headers),
        "explain": client.get("/api/permissions/explain", query_string={"entity": "lead", "action": "read"},
                              headers=headers),
        "upload": client.post("/api/files", data={"file": (io.BytesIO(b"zombie"), "z.txt")}, headers=headers,
                              content_type="multipart/form-data"),
        "download": client.get(f"/api/files/{file_id}", headers=headers),
        "revoke": client.post("/api/auth/revoke", headers=headers),
    }


@pytest.mark.parametrize("how", ["deactivated", "revoked"])
def test_a_dead_token_is_401_on_every_endpoint(client, installation, world, how):
    token = _bearer(client, "rep", "rep-password")
    other = _bearer(client, "rep", "rep-password")
    upload = client.post("/api/files", data={"file": (io.BytesIO(b"data"), "d.txt")}, headers=token,
                         content_type="multipart/form-data")
    assert upload.status_code == 201 and client.get("/api/me", headers=token).status_code == 200
    before = snapshot(installation, world)
    leads = count(installation, "lead")

    if how == "deactivated":
        installation.accounts.deactivate_user("rep")
    else:
        assert client.post("/api/auth/revoke", headers=token).status_code == 204

    for name, response in _every_endpoint(client, token, world, upload.json["id"]).items():
        assert response.status_code == 401, (name, response.status_code, response.get_data(as_text=True))
        assert response.json["error"]["code"] == "unauthorized", name
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), name
    assert snapshot(installation, world) == before and count(installation, "lead") == leads
    if how == "deactivated":
        assert client.get("/api/me", headers=other).status_code == 401  # every token of the user
        assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 401
    else:
        assert client.get("/api/me", headers=other).status_code == 200  # only that token


def test_a_live_token_follows_a_role_change_at_the_next_request(client, installation, auth, world):
    rep = auth("rep")
    opp, account = world["opportunity"]["id"], world["account"]["id"]
    assert client.get(f"{URL}/opportunity/{opp}", headers=rep).status_code == 200
    assert "credit_limit" in client.get(f"{URL}/account/{account}", headers=rep).json
    assert "opportunity" in {e["name"] for e in client.get("/api/meta/entities", headers=rep).json["data"]}

    _set_user(installation, "rep", role="marketing")  # no opportunities, no credit limits

    assert client.get("/api/me", headers=rep).json["role"] == "marketing"
    assert client.get(f"{URL}/opportunity/{opp}", headers=rep).status_code == 404
    assert client.get(f"{URL}/opportunity", headers=rep).status_code == 404
    assert client.get(f"{URL}/contract/{world['contract']['id']}", headers=rep).status_code == 404
    record = client.get(f"{URL}/account/{account}", headers=rep).json
    assert record["name"] == "Rep Account" and "credit_limit" not in record and "annual_revenue" not in record
    assert client.get(f"{URL}/account", query_string={"sort": "credit_limit"}, headers=rep).status_code == 400
    names = {e["name"] for e in client.get("/api/meta/entities", headers=rep).json["data"]}
    assert "opportunity" not in names and "contract" not in names and "lead" in names
    assert client.patch(f"{URL}/account/{account}", json={"version": 1, "description": "x"},
                        headers=rep).status_code == 403  # marketing may read accounts, not update them

    _set_user(installation, "rep", team_id=installation.accounts.team_id("Hangzhou"), role="supervisor")
    # a Shanghai record, seen by a Hangzhou supervisor
    assert client.get(f"{URL}/opportunity/{opp}", headers=rep).status_code == 404


# -- files ----------------------------------------------------------------------------------------------
def _upload(client, headers, content: bytes = b"signed contract: secret terms") -> str:
    upload = client.post("/api/files", data={"file": (io.BytesIO(content), "signed.pdf")}, headers=headers,
                         content_type="multipart/form-data")
    assert upload.status_code == 201
    return upload.json["id"]


def _attached_file(client, auth, world) -> str:
    """A file rep uploaded and attached to rep's contract."""
    rep = auth("rep")
    file_id = _upload(client, rep)
    contract = world["contract"]
    attached = client.patch(f"{URL}/contract/{contract['id']}",
                            json={"version": contract["version"], "attachment": file_id}, headers=rep)
    assert attached.status_code == 200 and attached.json["attachment"] == file_id
    assert client.get(f"/api/files/{file_id}", headers=rep).data == b"signed contract: secret terms"
    return file_id


def test_rep2_cannot_download_the_file_of_a_record_rep2_cannot_read(client, auth, world):
    """Found while writing these tests: any logged-in user could download any file by id."""
    file_id = _attached_file(client, auth, world)
    rep2 = auth("rep2")
    real = client.get(f"/api/files/{file_id}", headers=rep2)
    fake_id = str(uuid.uuid4())
    assert b"secret terms" not in real.data
    assert real.status_code == 404 and real.json["error"]["code"] == "not_found"
    assert normalised(real, file_id) == normalised(client.get(f"/api/files/{fake_id}", headers=rep2), fake_id)
    # those who may read the contract may read its attachment
    for reader in ("supervisor", "manager", "admin"):
        assert client.get(f"/api/files/{file_id}", headers=auth(reader)).status_code == 200, reader
    assert client.get(f"/api/files/{file_id}", headers=auth("marketing")).status_code == 404  # no contracts


def test_an_unattached_upload_is_only_its_uploaders(client, auth):
    file_id = _upload(client, auth("rep"), b"draft")
    assert client.get(f"/api/files/{file_id}", headers=auth("rep")).status_code == 200
    for other in ("rep2", "supervisor", "marketing"):
        assert client.get(f"/api/files/{file_id}", headers=auth(other)).status_code == 404, other


def test_a_file_follows_its_record_when_the_record_changes_hands(client, auth, org, world):
    file_id = _attached_file(client, auth, world)
    assert client.get(f"/api/files/{file_id}", headers=auth("rep2")).status_code == 404
    moved = client.post(f"{URL}/contract/{world['contract']['id']}/assign", json={"owner": org["rep2"].id},
                        headers=auth("manager"))
    assert moved.status_code == 200, moved.json
    assert client.get(f"/api/files/{file_id}", headers=auth("rep2")).status_code == 200


def test_rep2_cannot_link_the_file_of_a_record_rep2_cannot_read(client, auth, world, installation):
    """Found while writing these tests: a file field accepted any existing file id, so rep2 could link rep's
    file to a record of rep2's own and then download it."""
    file_id = _attached_file(client, auth, world)
    rep2 = auth("rep2")
    activities = count(installation, "activity")
    real = client.post(f"{URL}/activity", json={"subject": "Copy", "photo": file_id}, headers=rep2)
    fake_id = str(uuid.uuid4())
    fake = client.post(f"{URL}/activity", json={"subject": "Copy", "photo": fake_id}, headers=rep2)
    assert fake.status_code == 422 and list(fake.json["error"]["fields"]) == ["photo"]
    assert normalised(real, file_id) == normalised(fake, fake_id)
    assert count(installation, "activity") == activities
    assert client.get(f"/api/files/{file_id}", headers=rep2).status_code == 404
    # control: rep2 may link a file of their own
    own = _upload(client, rep2, b"mine")
    assert client.post(f"{URL}/activity", json={"subject": "Mine", "photo": own}, headers=rep2).status_code == 201


def test_the_database_tables_survive_the_attacks(client, nasty_leads, installation):
    """After hostile input every answer was a 2xx/4xx JSON body (never a 5xx) and the schema and
    rows are intact (a belt-and-braces check on the raw database)."""
    answers = []
    for value in NASTY:
        for query in ({"filter[name]": value, "q": value}, {"filter[company][contains]": value},
                      {"filter[name][in]": value}, {"filter[score]": value}, {"sort": value}, {"cursor": value},
                      {"q": value, "sort": "-name", "limit": "2"}, {"filter[name]": value + "\x00"},
                      {"q": "\x00" + value}):
            answers.append((query, client.get(f"{URL}/lead", query_string=query, headers=nasty_leads)))
        answers.append((value, client.post(f"{URL}/lead", json={"name": value}, headers=nasty_leads)))
        answers.append((value, client.get(f"{URL}/lead/{value.replace('%', '%25')}", headers=nasty_leads)))
    for what, response in answers:
        assert 200 <= response.status_code < 300 or 400 <= response.status_code < 500, \
            (what, response.status_code, response.get_data(as_text=True)[:300])
        assert response.is_json, (what, response.get_data(as_text=True)[:300])
        assert "data" in response.json or "id" in response.json or response.json["error"]["code"], what
    # every SQL-looking name was stored as plain data, exactly as sent
    created = sorted(response.json["name"] for _, response in answers if response.status_code == 201)
    assert created == sorted(n.strip() for n in NASTY)
    names = set(sa.inspect(installation.db).get_table_names())
    assert {"lead", "account", "opportunity", "crm_users", "crm_audit"} <= names
    with installation.db.connect() as conn:
        assert conn.scalar(sa.text("select count(*) from lead")) == len(LEAD_NAMES) + len(NASTY)
        stored_names = sorted(r[0] for r in conn.execute(sa.text("select name from lead")))
    assert stored_names == sorted(LEAD_NAMES + created)
