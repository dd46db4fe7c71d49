"""HTTP API: creating, reading, updating and deleting records; history, duplicates, autonumbers.

Checks the contract of DESIGN §6 against the base definitions (definitions/base/entities/*.json).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

URL = "/api/records"


@pytest.fixture
def rep(auth):
    return auth("rep")


def post(client, who, entity, body, extra_headers=None):
    return client.post(f"{URL}/{entity}", json=body, headers={**who, **(extra_headers or {})})


def create(client, headers, entity, **fields) -> dict:
    response = post(client, headers, entity, fields)
    assert response.status_code == 201, response.json
    return response.json


def patch(client, headers, entity, record, **fields):
    return client.patch(f"{URL}/{entity}/{record['id']}", json={"version": record["version"], **fields},
                        headers=headers)


def get(client, headers, entity, record_id):
    return client.get(f"{URL}/{entity}/{record_id}", headers=headers)


def invalid(response) -> dict:
    assert response.status_code == 422, (response.status_code, response.json)
    assert response.json["error"]["code"] == "validation"
    return response.json["error"]["fields"]


def forbidden(response) -> dict:
    """A 403 for fields the caller may not write; returns the fields it names."""
    assert response.status_code == 403, (response.status_code, response.json)
    assert response.json["error"]["code"] == "forbidden"
    return response.json["error"]["fields"]


READ_ONLY = ["You may not change this field."]


def account(client, headers, name="Acme Ltd", **fields) -> dict:
    return create(client, headers, "account", name=name, **fields)


def opportunity(client, headers, **fields) -> dict:
    acc = account(client, headers, name=f"Account {uuid.uuid4().hex[:8]}")
    return create(client, headers, "opportunity", **{"name": "Big deal", "account": acc["id"],
                                                     "expected_close_date": "2026-06-30", **fields})


# -- create -------------------------------------------------------------------------------------
def test_create_answers_201_with_location_and_the_stored_record(client, rep, org):
    response = post(client, rep, "lead", {"name": "Ann Lee", "company": "Acme"})
    assert response.status_code == 201
    lead = response.json
    assert response.headers["Location"] == f"/api/records/lead/{lead['id']}"
    assert isinstance(lead["id"], str) and str(uuid.UUID(lead["id"])) == lead["id"]
    assert lead["version"] == 1
    assert (lead["name"], lead["company"], lead["email"]) == ("Ann Lee", "Acme", None)
    assert lead["owner"] == org["rep"].id
    assert lead["team"] == org["rep"].team is not None
    assert lead["stage"] == "new"
    created = datetime.fromisoformat(lead["created_at"])
    assert created.utcoffset() is not None and abs((datetime.now(UTC) - created).total_seconds()) < 60
    assert get(client, rep, "lead", lead["id"]).json == lead
    other = create(client, rep, "lead", name="Bo")["id"]
    assert other != lead["id"] and not other.isdigit() and str(uuid.UUID(other)) == other
    assert opportunity(client, rep)["stage"] == "initial_contact"
    assert create(client, rep, "tender", title="Metro line 5")["stage"] == "tracking"


def test_every_invalid_field_is_named_in_one_422(client, rep):
    response = post(client, rep, "opportunity", {
        "amount": "12x", "score": 1, "opportunity_type": "charity", "expected_close_date": "2026-06-30"})
    fields = invalid(response)
    assert set(fields) == {"name", "account", "amount", "score", "opportunity_type"}
    assert fields["name"] == ["This field is required."]
    assert fields["score"] == ["Unknown field."]
    assert all(isinstance(m, str) and m for messages in fields.values() for m in messages)


def test_every_read_only_field_sent_is_named_in_one_403_and_nothing_is_written(client, rep):
    response = post(client, rep, "opportunity", {
        "name": "Deal", "id": "abc", "created_at": "2026-01-01T00:00:00Z", "weighted_amount": 5, "team": "x"})
    assert forbidden(response) == {name: READ_ONLY for name in ("created_at", "id", "team", "weighted_amount")}
    assert client.get(f"{URL}/opportunity", headers=rep).json["data"] == []


def test_lead_with_bad_email_string_score_and_unknown_choice_is_rejected_field_by_field(client, rep):
    fields = invalid(post(client, rep, "lead", {"email": "ann@", "score": "42", "source": "carrier_pigeon",
                                                "nickname": "Annie"}))
    assert set(fields) == {"name", "email", "score", "source", "nickname"}
    assert fields["email"] == ["Not a valid email address."]
    assert fields["score"] == ["Must be an integer."]
    assert "'carrier_pigeon' is not one of the choices" in fields["source"][0]
    assert fields["nickname"] == ["Unknown field."]
    assert client.get(f"{URL}/lead", headers=rep).json["data"] == []


@pytest.mark.parametrize("body", ['{"name": "Ann"', "name=Ann", "", '[{"name": "Ann"}]', '"Ann"', "42", "null"])
def test_a_body_that_is_not_a_json_object_is_400_malformed(client, rep, body):
    response = client.post(f"{URL}/lead", data=body, content_type="application/json", headers=rep)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed"
    assert client.get(f"{URL}/lead", headers=rep).json["data"] == []


def test_an_unknown_entity_is_404(client, rep):
    for response in (post(client, rep, "spaceship", {"name": "x"}), client.get(f"{URL}/spaceship", headers=rep),
                     get(client, rep, "spaceship", str(uuid.uuid4()))):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"


BASE = {"lead": {"name": "Ann"}, "account": {}, "tender": {"title": "Metro"}, "activity": {"subject": "Call"}}


def minimal(entity: str, **fields) -> dict:
    extra = {"name": f"Account {uuid.uuid4().hex[:8]}"} if entity == "account" else {}
    return {**BASE[entity], **extra, **fields}


@pytest.mark.parametrize("entity, field, sent, returned", [
    ("account", "annual_revenue", "1200.50", Decimal("1200.50")),
    ("account", "annual_revenue", 0, Decimal("0.00")),
    ("tender", "published_on", "2024-02-29", "2024-02-29"),
    ("lead", "next_follow_up_at", "2026-03-01T10:30:00+08:00", "2026-03-01T02:30:00+00:00"),
    ("account", "location", {"lat": 31.2304, "lon": 121.4737}, {"lat": Decimal("31.2304"), "lon": Decimal("121.4737")}),
    ("account", "location", {"lat": -90, "lon": 180}, {"lat": Decimal("-90.0"), "lon": Decimal("180.0")}),
    ("account", "tags", ["vip", "key_account"], ["vip", "key_account"]),
    ("account", "tags", ["vip", "vip"], ["vip"]),
    ("lead", "mobile", "138 0000 1111", "13800001111"),
    ("lead", "phone", "+86 (21) 6888-1234", "+862168881234"),
    ("lead", "email", " ann@example.com ", "ann@example.com"),
    ("lead", "company", "上海某某贸易有限公司", "上海某某贸易有限公司"),
    ("activity", "effective", True, True),
])
def test_values_are_stored_and_returned_in_their_json_form(client, rep, entity, field, sent, returned):
    """Exactly: the test client, like an API client should, reads JSON numbers with a fraction as Decimal,
    so ``str`` shows every digit the response carried (``1200.50``, not ``1200.5``)."""
    record = create(client, rep, entity, **minimal(entity, **{field: sent}))
    assert (record[field], type(record[field]), str(record[field])) == (returned, type(returned), str(returned))
    again = get(client, rep, entity, record["id"]).json[field]
    assert (again, str(again)) == (returned, str(returned))


@pytest.mark.parametrize("entity, field, sent, message", [
    ("account", "annual_revenue", "1200.505", "At most 2 decimal places."),
    ("account", "annual_revenue", 1.234, "At most 2 decimal places."),
    ("account", "annual_revenue", -1, "Must be at least 0."),
    ("account", "annual_revenue", True, "Must be a number."),
    ("tender", "published_on", "2026-02-30", "Not a valid date (YYYY-MM-DD)."),
    ("tender", "published_on", "2026-02-01T00:00:00Z", "Not a valid date (YYYY-MM-DD)."),
    ("tender", "published_on", 20260201, "Not a valid date (YYYY-MM-DD)."),
    ("lead", "next_follow_up_at", "2026-03-01T10:30:00", "Not a valid date-time (ISO 8601 with a UTC offset)."),
    ("lead", "next_follow_up_at", "2026-03-01", "Not a valid date-time (ISO 8601 with a UTC offset)."),
    ("account", "location", {"lat": 91, "lon": 0}, "lat"),
    ("account", "location", {"lat": 0, "lon": -180.5}, "lon"),
    ("account", "location", {"lat": "31.2", "lon": "121.4"}, "lat"),
    ("account", "location", [31.2, 121.4], "lat"),
    ("account", "tags", ["vip", "platinum"], "'platinum' is not one of the choices"),
    ("account", "tags", "vip", "Must be a list of choices."),
    ("lead", "mobile", "call me maybe", "Not a valid phone number."),
    ("lead", "score", 4.0, "Must be an integer."),
    ("lead", "name", "x" * 101, "At most 100 characters."),
    ("activity", "effective", "true", "Must be true or false."),
])
def test_a_bad_value_is_422_on_its_field(client, rep, entity, field, sent, message):
    fields = invalid(post(client, rep, entity, minimal(entity, **{field: sent})))
    assert list(fields) == [field] and len(fields[field]) == 1
    assert message in fields[field][0]
    assert client.get(f"{URL}/{entity}", headers=rep).json["data"] == []


def test_an_integer_too_big_to_store_is_422(client, rep):
    assert "duration_minutes" in invalid(post(client, rep, "activity", {"subject": "Call", "duration_minutes": 2**63}))


@pytest.mark.parametrize("entity, field, value, bug", [
    ("account", "annual_revenue", 10**18, "annual_revenue=10**18 passes validation but overflows NUMERIC(20,2)"),
    ("lead", "name", "Ann\x00Lee", "a text value containing U+0000 passes validation; PostgreSQL cannot store it"),
], ids=["huge-currency", "nul-in-text"])
def test_a_value_the_database_cannot_hold_is_stored_or_refused_never_a_500(client, rep, request, entity, field,
                                                                             value, bug):
    response = post(client, rep, entity, minimal(entity, **{field: value}))
    if response.status_code == 201:
        assert get(client, rep, entity, response.json["id"]).json[field] == value
    else:
        assert list(invalid(response)) == [field]


def test_a_reference_to_a_missing_record_is_422_on_that_field(client, rep):
    missing = str(uuid.uuid4())
    fields = invalid(post(client, rep, "contact", {"last_name": "Wu", "account": missing}))
    assert set(fields) == {"account"}
    assert missing in fields["account"][0]


def test_chinese_accept_language_gives_chinese_messages(client, rep):
    response = post(client, rep, "lead", {"email": "ann@", "nickname": "x"}, {"Accept-Language": "zh"})
    fields = invalid(response)
    assert response.json["error"]["message"] == "记录包含无效字段。"
    assert fields == {"name": ["此字段为必填项。"], "email": ["邮箱地址无效。"], "nickname": ["未知字段。"]}
    assert invalid(post(client, rep, "lead", {}, {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})) == {
        "name": ["此字段为必填项。"]}
    assert invalid(post(client, rep, "lead", {}))["name"] == ["This field is required."]


# -- update -------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["body", "If-Match", "weak If-Match"])
def test_patch_names_the_version_it_read_and_gets_the_next_one(client, rep, how):
    lead = create(client, rep, "lead", name="Ann")
    body, headers = {"company": "Acme"}, dict(rep)
    if how == "body":
        body["version"] = 1
    else:
        headers["If-Match"] = '"1"' if how == "If-Match" else 'W/"1"'
    response = client.patch(f"{URL}/lead/{lead['id']}", json=body, headers=headers)
    assert response.status_code == 200
    assert (response.json["company"], response.json["version"], response.json["name"]) == ("Acme", 2, "Ann")
    assert response.json["updated_at"] >= lead["updated_at"] and response.json["created_at"] == lead["created_at"]
    assert get(client, rep, "lead", lead["id"]).json == response.json


def test_a_stale_version_is_409_and_leaves_the_record_unchanged(client, rep):
    lead = create(client, rep, "lead", name="Ann")
    assert patch(client, rep, "lead", lead, company="First").status_code == 200
    stale = patch(client, rep, "lead", lead, company="Second")
    stale_header = client.patch(f"{URL}/lead/{lead['id']}", json={"company": "3"}, headers={**rep, "If-Match": '"1"'})
    for response in (stale, stale_header):
        assert response.status_code == 409
        assert response.json["error"]["code"] == "stale_version"
    stored = get(client, rep, "lead", lead["id"]).json
    assert (stored["company"], stored["version"]) == ("First", 2)


@pytest.mark.parametrize("body", [{"company": "Acme"}, {"company": "Acme", "version": "1"}, {"version": None}])
def test_a_patch_without_a_usable_version_is_400(client, rep, body):
    lead = create(client, rep, "lead", name="Ann")
    response = client.patch(f"{URL}/lead/{lead['id']}", json=body, headers=rep)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed"
    assert get(client, rep, "lead", lead["id"]).json == lead


def test_an_unknown_id_is_404_to_get_patch_delete_and_history(client, rep):
    missing = str(uuid.uuid4())
    for response in (get(client, rep, "lead", missing), patch(client, rep, "lead", {"id": missing, "version": 1}, a=1),
                     client.delete(f"{URL}/lead/{missing}", headers=rep),
                     client.get(f"{URL}/lead/{missing}/history", headers=rep)):
        assert (response.status_code, response.json["error"]["code"]) == (404, "not_found")


def test_the_weighted_amount_formula_follows_amount_and_probability(client, rep):
    opp = opportunity(client, rep)
    assert (opp["probability"], opp["amount"], opp["weighted_amount"]) == (10, None, None)
    opp = patch(client, rep, "opportunity", opp, amount=1000).json
    assert repr(opp["weighted_amount"]) == "Decimal('100.00')"
    opp = patch(client, rep, "opportunity", opp, probability=50).json
    assert repr(opp["weighted_amount"]) == "Decimal('500.00')"
    opp = patch(client, rep, "opportunity", opp, amount="2000.40").json
    assert repr(opp["weighted_amount"]) == "Decimal('1000.20')"  # exact: 2000.40 * 50 / 100
    assert repr(get(client, rep, "opportunity", opp["id"]).json["weighted_amount"]) == "Decimal('1000.20')"
    assert forbidden(patch(client, rep, "opportunity", opp, weighted_amount=1)) == {"weighted_amount": READ_ONLY}


def test_entering_proposal_needs_an_amount(client, rep):
    opp = opportunity(client, rep)
    assert invalid(patch(client, rep, "opportunity", opp, stage="proposal")) == {
        "amount": ["Required to enter stage 'Proposal / quote'."]}
    assert get(client, rep, "opportunity", opp["id"]).json["stage"] == "initial_contact"
    assert patch(client, rep, "opportunity", opp, stage="proposal", amount=5000).json["stage"] == "proposal"


def test_winning_needs_an_amount_and_a_close_date(client, rep):
    opp = patch(client, rep, "opportunity", opportunity(client, rep), stage="negotiation").json
    fields = invalid(patch(client, rep, "opportunity", opp, stage="won", expected_close_date=None))
    assert set(fields) == {"amount", "expected_close_date"}
    assert fields["amount"] == ["Required to enter stage 'Won'."]
    assert patch(client, rep, "opportunity", opp, stage="won", amount=800).json["stage"] == "won"


def test_an_active_contract_needs_its_dates_in_order(client, rep):
    contract = create(client, rep, "contract", name="Supply", account=account(client, rep)["id"], amount=100)
    contract = patch(client, rep, "contract", contract, stage="pending_approval").json
    assert invalid(patch(client, rep, "contract", contract, stage="active")) == {
        "signed_on": ["Required to enter stage 'Active'."], "start_date": ["Required to enter stage 'Active'."]}
    dates = {"signed_on": "2026-01-01", "start_date": "2026-02-01"}
    assert invalid(patch(client, rep, "contract", contract, stage="active", end_date="2026-01-31", **dates)) == {
        "end_date": ["The end date cannot be before the start date."]}  # a validation rule, in every stage
    assert patch(client, rep, "contract", contract, stage="active", end_date="2026-12-31", **dates).status_code == 200


def test_a_stage_move_the_definition_does_not_allow_is_422_on_stage(client, rep):
    opp = opportunity(client, rep, amount=1000)
    assert invalid(patch(client, rep, "opportunity", opp, stage="won")) == {
        "stage": ["Cannot move from stage 'Initial contact' to 'Won'."]}
    lead = patch(client, rep, "lead", create(client, rep, "lead", name="Ann"), stage="following_up").json
    assert set(invalid(patch(client, rep, "lead", lead, stage="new"))) == {"stage"}
    assert set(invalid(patch(client, rep, "lead", lead, stage="sleeping"))) == {"stage"}
    assert get(client, rep, "lead", lead["id"]).json["stage"] == "following_up"


@pytest.mark.parametrize("entity, stage, reason", [("lead", "invalid", "invalid_reason"),
                                                   ("opportunity", "lost", "lost_reason")])
def test_a_closing_stage_needs_its_reason(client, rep, entity, stage, reason):
    record = opportunity(client, rep) if entity == "opportunity" else create(client, rep, "lead", name="Ann")
    assert invalid(patch(client, rep, entity, record, stage=stage)) == {reason: ["This field is required."]}
    moved = patch(client, rep, entity, record, stage=stage, **{reason: "Wrong number"})
    assert (moved.status_code, moved.json["stage"], moved.json[reason]) == (200, stage, "Wrong number")


def test_a_whitespace_only_reason_is_no_reason(client, rep):
    lead = create(client, rep, "lead", name="Ann")
    assert invalid(patch(client, rep, "lead", lead, stage="invalid", invalid_reason="  \n ")) == {
        "invalid_reason": ["This field is required."]}


def test_city_must_belong_to_the_chosen_region(client, rep):
    lead = create(client, rep, "lead", name="Ann", region="east_china", city="shanghai")
    assert (lead["region"], lead["city"]) == ("east_china", "shanghai")
    mismatched = {"name": "Bo", "region": "north_china", "city": "shanghai"}
    assert list(invalid(post(client, rep, "lead", mismatched))) == ["city"]
    assert set(invalid(patch(client, rep, "lead", lead, region="south_china"))) == {"city"}
    moved = patch(client, rep, "lead", lead, region="north_china", city="beijing")
    assert (moved.json["region"], moved.json["city"]) == ("north_china", "beijing")
    assert patch(client, rep, "lead", moved.json, city="other_city").status_code == 200


def test_clearing_a_required_field_is_422_and_changes_nothing(client, rep):
    lead = create(client, rep, "lead", name="Ann")
    for empty in (None, "", "   "):
        assert invalid(patch(client, rep, "lead", lead, name=empty)) == {"name": ["This field is required."]}
    assert get(client, rep, "lead", lead["id"]).json == lead
    assert len(client.get(f"{URL}/lead/{lead['id']}/history", headers=rep).json["data"]) == 1


def test_a_patch_that_changes_nothing_keeps_the_version(client, rep):
    lead = create(client, rep, "lead", name="Ann", company="Acme", mobile="13800001111")
    response = patch(client, rep, "lead", lead, name="Ann", company="Acme", mobile="138 0000 1111")
    assert response.status_code == 200
    assert response.json == lead
    assert len(client.get(f"{URL}/lead/{lead['id']}/history", headers=rep).json["data"]) == 1


def test_an_owner_must_be_an_existing_user_and_brings_their_team(client, auth, org):
    missing = str(uuid.uuid4())
    fields = invalid(post(client, auth("admin"), "lead", {"name": "Ann", "owner": missing}))
    assert list(fields) == ["owner"] and missing in fields["owner"][0]
    lead = create(client, auth("admin"), "lead", name="Ann", owner=org["rep2"].id)
    assert (lead["owner"], lead["team"]) == (org["rep2"].id, org["rep2"].team)


# -- delete -------------------------------------------------------------------------------------
def test_delete_answers_204_and_the_record_is_gone(client, rep, auth):
    admin = auth("admin")  # reps may not delete leads; the admin may delete anything
    lead = patch(client, rep, "lead", create(client, rep, "lead", name="Ann"), company="Acme").json
    stale = client.delete(f"{URL}/lead/{lead['id']}", headers={**admin, "If-Match": '"1"'})
    assert (stale.status_code, stale.json["error"]["code"]) == (409, "stale_version")
    assert get(client, rep, "lead", lead["id"]).status_code == 200
    response = client.delete(f"{URL}/lead/{lead['id']}", headers={**admin, "If-Match": '"2"'})
    assert (response.status_code, response.data) == (204, b"")
    assert get(client, rep, "lead", lead["id"]).status_code == 404
    assert get(client, admin, "lead", lead["id"]).status_code == 404
    assert client.get(f"{URL}/lead/{lead['id']}/history", headers=admin).status_code == 404
    assert client.delete(f"{URL}/lead/{lead['id']}", headers=admin).status_code == 404


def test_an_account_a_contact_refers_to_cannot_be_deleted(client, rep, auth):
    acc = account(client, rep)
    create(client, rep, "contact", last_name="Wu", account=acc["id"])
    response = client.delete(f"{URL}/account/{acc['id']}", headers=auth("admin"))  # reps may not delete
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert get(client, rep, "account", acc["id"]).status_code == 200


# -- history ------------------------------------------------------------------------------------
def test_history_lists_create_and_updates_oldest_first_with_old_and_new_values(client, rep, org):
    lead = create(client, rep, "lead", name="Ann", score=10)
    lead = patch(client, rep, "lead", lead, company="Acme", score=20).json
    patch(client, rep, "lead", lead, score=30, stage="following_up")
    response = client.get(f"{URL}/lead/{lead['id']}/history", headers=rep)
    assert response.status_code == 200
    entries = response.json["data"]
    assert [(e["action"], e["version"], e["by"]["username"]) for e in entries] == [
        ("create", 1, "rep"), ("update", 2, "rep"), ("update", 3, "rep")]
    for entry in entries:
        assert datetime.fromisoformat(entry["at"]).utcoffset() is not None
    key = lambda c: c["field"]  # noqa: E731
    assert sorted(entries[0]["changes"], key=key) == [
        {"field": f, "old": None, "new": v} for f, v in [("name", "Ann"), ("owner", org["rep"].id), ("score", 10),
                                                          ("stage", "new"), ("team", org["rep"].team)]]
    assert sorted(entries[1]["changes"], key=key) == [{"field": "company", "old": None, "new": "Acme"},
                                                      {"field": "score", "old": 10, "new": 20}]
    assert sorted(entries[2]["changes"], key=key) == [{"field": "score", "old": 20, "new": 30},
                                                      {"field": "stage", "old": "new", "new": "following_up"}]


# -- duplicates and unique fields -----------------------------------------------------------------
def assert_duplicate(response, existing_id: str | None) -> None:
    """``existing_id=None``: the duplicate is one the caller may not see, so its id must not be revealed."""
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "duplicate"
    assert response.json["error"].get("existing_id") == existing_id


def test_a_lead_with_the_same_mobile_in_another_format_is_a_duplicate(client, rep, auth):
    first = create(client, rep, "lead", name="Ann", mobile="138 0000 1111")
    # rep2 may not read rep's lead: still a duplicate, but its id is not revealed
    assert_duplicate(post(client, auth("rep2"), "lead", {"name": "Ann again", "mobile": "13800001111"}), None)
    assert_duplicate(post(client, auth("admin"), "lead", {"name": "Ann again", "mobile": "(138) 0000-1111"}),
                     first["id"])
    other = create(client, rep, "lead", name="Bo", mobile="139 0000 1111")
    assert_duplicate(patch(client, rep, "lead", other, mobile="138-0000-1111"), first["id"])
    assert len(client.get(f"{URL}/lead", headers=rep).json["data"]) == 2


def test_a_second_product_with_the_same_sku_or_account_with_the_same_name_is_409(client, rep, auth):
    admin = auth("admin")  # only the admin may create products
    first = create(client, admin, "product", sku="SKU-1", name="Widget")
    assert_duplicate(post(client, admin, "product", {"sku": "SKU-1", "name": "Other widget"}), first["id"])
    first = account(client, rep, name="Acme Ltd")
    assert_duplicate(post(client, rep, "account", {"name": "Acme Ltd"}), first["id"])
    second = account(client, rep, name="Beta Ltd")
    assert_duplicate(patch(client, rep, "account", second, name="Acme Ltd"), first["id"])


# -- autonumbers --------------------------------------------------------------------------------
def test_contracts_get_consecutive_numbers_that_cannot_be_written(client, rep):
    acc = account(client, rep)
    month = datetime.now(UTC).strftime("%Y%m")
    first = create(client, rep, "contract", name="Supply 2026", account=acc["id"], amount=1000)
    second = create(client, rep, "contract", name="Service 2026", account=acc["id"], amount="2000.00")
    assert first["contract_no"] == f"CT-{month}-0001"
    assert second["contract_no"] == f"CT-{month}-0002"
    readonly = {"contract_no": READ_ONLY}
    body = {"name": "X", "account": acc["id"], "amount": 1, "contract_no": "CT-999"}
    assert forbidden(post(client, rep, "contract", body)) == readonly
    assert forbidden(patch(client, rep, "contract", first, contract_no="CT-999")) == readonly
    assert get(client, rep, "contract", first["id"]).json["contract_no"] == f"CT-{month}-0001"


def test_a_duplicate_rule_speaks_in_its_own_words_in_the_callers_language(client, rep):
    create(client, rep, "lead", name="Ann", mobile="138 0000 1111")
    english = post(client, rep, "lead", {"name": "Ann again", "mobile": "13800001111"})
    assert english.json["error"]["message"] == "A lead with this mobile number already exists."
    chinese = client.post(f"{URL}/lead", json={"name": "Ann again", "mobile": "13800001111"},
                          headers={**rep, "Accept-Language": "zh"})
    assert chinese.status_code == 409 and chinese.json["error"]["message"] == "已存在相同手机号的线索。"
