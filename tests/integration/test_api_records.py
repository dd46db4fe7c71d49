"""HTTP API: creating, reading, updating and deleting records; history, duplicates, autonumbers.

Checks the contract of DESIGN §6 against the base definitions (definitions/base/entities/*.json).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

URL = "/api/records"


@pytest.fixture
def rep(auth):
    return auth("rep")


def post(client, headers, entity, body, **kw):
    return client.post(f"{URL}/{entity}", json=body, headers={**headers, **kw.pop("headers", {})}, **kw)


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
    """The ``error.fields`` of a 422 response."""
    assert response.status_code == 422, (response.status_code, response.json)
    assert response.json["error"]["code"] == "validation"
    return response.json["error"]["fields"]


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


def test_ids_are_opaque_uuids_not_sequential_numbers(client, rep):
    ids = [create(client, rep, "lead", name=f"Lead {i}")["id"] for i in range(3)]

    assert len(set(ids)) == 3
    for record_id in ids:
        assert not record_id.isdigit()
        uuid.UUID(record_id)


def test_a_staged_entity_starts_in_its_first_stage(client, rep):
    assert opportunity(client, rep)["stage"] == "initial_contact"
    assert create(client, rep, "tender", title="Metro line 5")["stage"] == "tracking"


def test_every_invalid_field_is_named_in_one_422(client, rep):
    response = post(client, rep, "opportunity", {
        "amount": "12x", "score": 1, "opportunity_type": "charity", "id": "abc", "created_at": "2026-01-01T00:00:00Z",
        "weighted_amount": 5, "expected_close_date": "2026-06-30"})

    fields = invalid(response)
    assert set(fields) == {"name", "account", "amount", "score", "opportunity_type", "id", "created_at",
                           "weighted_amount"}
    assert fields["name"] == ["This field is required."]
    assert fields["score"] == ["Unknown field."]
    assert fields["id"] == fields["created_at"] == fields["weighted_amount"] == ["This field is read-only."]
    assert all(isinstance(m, str) and m for messages in fields.values() for m in messages)


def test_lead_with_bad_email_string_score_and_unknown_choice_is_rejected_field_by_field(client, rep):
    fields = invalid(post(client, rep, "lead", {"email": "ann@", "score": "42", "source": "carrier_pigeon",
                                                "nickname": "Annie"}))

    assert set(fields) == {"name", "email", "score", "source", "nickname"}
    assert fields["email"] == ["Not a valid email address."]
    assert fields["score"] == ["Must be an integer."]
    assert "'carrier_pigeon' is not one of the choices" in fields["source"][0]
    assert fields["nickname"] == ["Unknown field."]
    assert client.get(f"{URL}/lead", headers=rep).json["data"] == []


def test_integer_range_and_text_length_are_checked(client, rep):
    fields = invalid(post(client, rep, "lead", {"name": "x" * 101, "score": 101}))

    assert fields == {"name": ["At most 100 characters."], "score": ["Must be at most 100."]}


@pytest.mark.parametrize("body", ['{"name": "Ann"', "name=Ann", ""])
def test_malformed_json_is_400_malformed(client, rep, body):
    response = client.post(f"{URL}/lead", data=body, content_type="application/json", headers=rep)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed"


@pytest.mark.parametrize("body", [[{"name": "Ann"}], "Ann", 42])
def test_json_that_is_not_an_object_is_400(client, rep, body):
    response = post(client, rep, "lead", body)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed"


def test_an_unknown_entity_is_404(client, rep):
    for response in (post(client, rep, "spaceship", {"name": "x"}), client.get(f"{URL}/spaceship", headers=rep),
                     get(client, rep, "spaceship", str(uuid.uuid4()))):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"


def test_currency_accepts_numeric_strings_and_rejects_extra_decimals(client, rep):
    acc = account(client, rep, annual_revenue="1200.50", credit_limit=99.5)
    assert (acc["annual_revenue"], acc["credit_limit"]) == (1200.5, 99.5)
    assert isinstance(acc["annual_revenue"], float)

    fields = invalid(post(client, rep, "account", {"name": "Too precise", "annual_revenue": "1200.505",
                                                   "credit_limit": 1.234}))
    assert fields == {"annual_revenue": ["At most 2 decimal places."], "credit_limit": ["At most 2 decimal places."]}
    assert invalid(post(client, rep, "account", {"name": "Neg", "annual_revenue": -1})) == {
        "annual_revenue": ["Must be at least 0."]}


def test_dates_are_yyyy_mm_dd_and_impossible_dates_are_rejected(client, rep):
    assert create(client, rep, "contact", last_name="Wu", account=account(client, rep)["id"],
                  birthday="1990-02-28")["birthday"] == "1990-02-28"

    for bad in ("2026-02-30", "2026/02/01", "01-02-2026", "2026-02-01T00:00:00Z", 20260201):
        assert "birthday" in invalid(post(client, rep, "contact", {"last_name": "Wu", "birthday": bad})), bad


def test_datetimes_need_an_offset_and_come_back_in_utc(client, rep):
    lead = create(client, rep, "lead", name="Ann", next_follow_up_at="2026-03-01T10:30:00+08:00")
    assert lead["next_follow_up_at"] == "2026-03-01T02:30:00+00:00"
    assert get(client, rep, "lead", lead["id"]).json["next_follow_up_at"] == "2026-03-01T02:30:00+00:00"

    fields = invalid(post(client, rep, "lead", {"name": "Bo", "next_follow_up_at": "2026-03-01T10:30:00"}))
    assert fields == {"next_follow_up_at": ["Not a valid date-time (ISO 8601 with a UTC offset)."]}


def test_geo_round_trips_and_out_of_range_coordinates_are_rejected(client, rep):
    acc = account(client, rep, location={"lat": 31.2304, "lon": 121.4737})
    assert acc["location"] == {"lat": 31.2304, "lon": 121.4737}
    assert get(client, rep, "account", acc["id"]).json["location"] == {"lat": 31.2304, "lon": 121.4737}

    for bad in ({"lat": 91, "lon": 0}, {"lat": 0, "lon": -180.5}, {"lat": 1}, [31.2, 121.4], "31.2,121.4"):
        assert "location" in invalid(post(client, rep, "account", {"name": "Geo", "location": bad})), bad


def test_multiselect_round_trips_and_unknown_values_are_rejected(client, rep):
    acc = account(client, rep, tags=["vip", "key_account"])
    assert acc["tags"] == ["vip", "key_account"]
    assert get(client, rep, "account", acc["id"]).json["tags"] == ["vip", "key_account"]

    assert "tags" in invalid(post(client, rep, "account", {"name": "Other", "tags": ["vip", "platinum"]}))
    assert "tags" in invalid(post(client, rep, "account", {"name": "Other", "tags": "vip"}))


def test_a_reference_to_a_missing_record_is_422_on_that_field(client, rep):
    missing = str(uuid.uuid4())

    fields = invalid(post(client, rep, "contact", {"last_name": "Wu", "account": missing}))

    assert set(fields) == {"account"}
    assert missing in fields["account"][0]


def test_phone_numbers_are_normalised(client, rep):
    lead = create(client, rep, "lead", name="Ann", mobile="138 0000 1111", phone="+86 (21) 6888-1234")

    assert (lead["mobile"], lead["phone"]) == ("13800001111", "+862168881234")
    assert "mobile" in invalid(post(client, rep, "lead", {"name": "Bo", "mobile": "call me maybe"}))


def test_chinese_accept_language_gives_chinese_messages(client, rep):
    response = post(client, rep, "lead", {"email": "ann@", "nickname": "x"}, headers={"Accept-Language": "zh"})

    fields = invalid(response)
    assert response.json["error"]["message"] == "记录包含无效字段。"
    assert fields == {"name": ["此字段为必填项。"], "email": ["邮箱地址无效。"], "nickname": ["未知字段。"]}
    assert invalid(post(client, rep, "lead", {}))["name"] == ["This field is required."]


# -- update -------------------------------------------------------------------------------------
def test_patch_with_version_in_the_body_updates_and_bumps_the_version(client, rep):
    lead = create(client, rep, "lead", name="Ann")

    response = patch(client, rep, "lead", lead, company="Acme")

    assert response.status_code == 200
    assert (response.json["company"], response.json["version"], response.json["name"]) == ("Acme", 2, "Ann")
    assert get(client, rep, "lead", lead["id"]).json == response.json


def test_patch_with_an_if_match_header(client, rep):
    lead = create(client, rep, "lead", name="Ann")

    response = client.patch(f"{URL}/lead/{lead['id']}", json={"company": "Acme"}, headers={**rep, "If-Match": '"1"'})

    assert response.status_code == 200
    assert (response.json["company"], response.json["version"]) == ("Acme", 2)


def test_a_stale_version_is_409_and_leaves_the_record_unchanged(client, rep):
    lead = create(client, rep, "lead", name="Ann")
    assert patch(client, rep, "lead", lead, company="First").status_code == 200

    stale = patch(client, rep, "lead", lead, company="Second")
    stale_header = client.patch(f"{URL}/lead/{lead['id']}", json={"company": "Third"}, headers={**rep, "If-Match": '"1"'})

    for response in (stale, stale_header):
        assert response.status_code == 409
        assert response.json["error"]["code"] == "stale_version"
    stored = get(client, rep, "lead", lead["id"]).json
    assert (stored["company"], stored["version"]) == ("First", 2)


def test_a_patch_without_a_version_is_400(client, rep):
    lead = create(client, rep, "lead", name="Ann")

    response = client.patch(f"{URL}/lead/{lead['id']}", json={"company": "Acme"}, headers=rep)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed"
    assert get(client, rep, "lead", lead["id"]).json["company"] is None


def test_patching_an_unknown_id_is_404(client, rep):
    response = patch(client, rep, "lead", {"id": str(uuid.uuid4()), "version": 1}, company="Acme")

    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_the_weighted_amount_formula_follows_amount_and_probability(client, rep):
    opp = opportunity(client, rep, amount=1000)
    assert (opp["probability"], opp["weighted_amount"]) == (10, 100)

    opp = patch(client, rep, "opportunity", opp, probability=50).json
    assert opp["weighted_amount"] == 500
    opp = patch(client, rep, "opportunity", opp, amount="2000.40").json
    assert opp["weighted_amount"] == pytest.approx(1000.2)
    assert get(client, rep, "opportunity", opp["id"]).json["weighted_amount"] == pytest.approx(1000.2)


def test_entering_proposal_needs_an_amount(client, rep):
    opp = opportunity(client, rep)

    fields = invalid(patch(client, rep, "opportunity", opp, stage="proposal"))

    assert fields == {"amount": ["Required to enter stage 'proposal'."]}
    assert get(client, rep, "opportunity", opp["id"]).json["stage"] == "initial_contact"
    assert patch(client, rep, "opportunity", opp, stage="proposal", amount=5000).json["stage"] == "proposal"


def test_winning_needs_an_amount_and_a_close_date(client, rep):
    opp = patch(client, rep, "opportunity", opportunity(client, rep), stage="negotiation").json

    fields = invalid(patch(client, rep, "opportunity", opp, stage="won", expected_close_date=None))

    assert set(fields) == {"amount", "expected_close_date"}
    assert fields["amount"] == ["Required to enter stage 'won'."]
    assert patch(client, rep, "opportunity", opp, stage="won", amount=800).json["stage"] == "won"


def test_a_stage_move_the_definition_does_not_allow_is_422_on_stage(client, rep):
    opp = opportunity(client, rep, amount=1000)
    assert invalid(patch(client, rep, "opportunity", opp, stage="won")) == {
        "stage": ["Cannot move from stage 'initial_contact' to 'won'."]}

    lead = patch(client, rep, "lead", create(client, rep, "lead", name="Ann"), stage="following_up").json
    assert set(invalid(patch(client, rep, "lead", lead, stage="new"))) == {"stage"}
    assert set(invalid(patch(client, rep, "lead", lead, stage="sleeping"))) == {"stage"}


def test_an_invalid_lead_needs_a_reason(client, rep):
    lead = create(client, rep, "lead", name="Ann")

    assert invalid(patch(client, rep, "lead", lead, stage="invalid")) == {"invalid_reason": ["This field is required."]}
    moved = patch(client, rep, "lead", lead, stage="invalid", invalid_reason="Wrong number")
    assert (moved.status_code, moved.json["stage"]) == (200, "invalid")


def test_a_lost_opportunity_needs_a_lost_reason(client, rep):
    opp = opportunity(client, rep)

    assert set(invalid(patch(client, rep, "opportunity", opp, stage="lost"))) == {"lost_reason"}
    assert patch(client, rep, "opportunity", opp, stage="lost", lost_reason="Price").json["stage"] == "lost"


def test_city_must_belong_to_the_chosen_region(client, rep):
    lead = create(client, rep, "lead", name="Ann", region="east_china", city="shanghai")
    assert (lead["region"], lead["city"]) == ("east_china", "shanghai")

    assert set(invalid(post(client, rep, "lead", {"name": "Bo", "region": "north_china", "city": "shanghai"}))) == {"city"}
    assert set(invalid(patch(client, rep, "lead", lead, region="south_china"))) == {"city"}
    moved = patch(client, rep, "lead", lead, region="north_china", city="beijing")
    assert (moved.json["region"], moved.json["city"]) == ("north_china", "beijing")
    assert patch(client, rep, "lead", moved.json, city="other_city").status_code == 200


def test_clearing_a_required_field_is_422(client, rep):
    lead = create(client, rep, "lead", name="Ann")

    for empty in (None, "", "   "):
        assert invalid(patch(client, rep, "lead", lead, name=empty)) == {"name": ["This field is required."]}
    assert get(client, rep, "lead", lead["id"]).json["name"] == "Ann"


def test_a_patch_that_changes_nothing_keeps_the_version(client, rep):
    lead = create(client, rep, "lead", name="Ann", company="Acme")

    response = patch(client, rep, "lead", lead, name="Ann", company="Acme")

    assert response.status_code == 200
    assert response.json["version"] == 1
    assert len(client.get(f"{URL}/lead/{lead['id']}/history", headers=rep).json["data"]) == 1


# -- delete -------------------------------------------------------------------------------------
def test_delete_answers_204_and_the_record_is_gone(client, rep):
    lead = create(client, rep, "lead", name="Ann")

    response = client.delete(f"{URL}/lead/{lead['id']}", headers=rep)

    assert (response.status_code, response.data) == (204, b"")
    assert get(client, rep, "lead", lead["id"]).status_code == 404
    assert client.get(f"{URL}/lead/{lead['id']}/history", headers=rep).status_code == 404
    assert client.delete(f"{URL}/lead/{lead['id']}", headers=rep).status_code == 404


def test_an_account_a_contact_refers_to_cannot_be_deleted(client, rep):
    acc = account(client, rep)
    create(client, rep, "contact", last_name="Wu", account=acc["id"])

    response = client.delete(f"{URL}/account/{acc['id']}", headers=rep)

    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"
    assert get(client, rep, "account", acc["id"]).status_code == 200


# -- history ------------------------------------------------------------------------------------
def test_history_lists_create_and_updates_oldest_first_with_old_and_new_values(client, rep):
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
    assert {"field": "name", "old": None, "new": "Ann"} in entries[0]["changes"]
    assert {"field": "score", "old": None, "new": 10} in entries[0]["changes"]
    key = lambda c: c["field"]  # noqa: E731
    assert sorted(entries[1]["changes"], key=key) == [{"field": "company", "old": None, "new": "Acme"},
                                                      {"field": "score", "old": 10, "new": 20}]
    assert sorted(entries[2]["changes"], key=key) == [{"field": "score", "old": 20, "new": 30},
                                                      {"field": "stage", "old": "new", "new": "following_up"}]


def test_history_of_an_unknown_record_is_404(client, rep):
    assert client.get(f"{URL}/lead/{uuid.uuid4()}/history", headers=rep).status_code == 404


# -- duplicates and unique fields -----------------------------------------------------------------
def assert_duplicate(response, existing_id: str) -> None:
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "duplicate"
    assert response.json["error"]["existing_id"] == existing_id


def test_a_lead_with_the_same_mobile_in_another_format_is_a_duplicate(client, rep, auth):
    first = create(client, rep, "lead", name="Ann", mobile="138 0000 1111")

    assert_duplicate(post(client, auth("rep2"), "lead", {"name": "Ann again", "mobile": "13800001111"}), first["id"])
    other = create(client, rep, "lead", name="Bo", mobile="139 0000 1111")
    assert_duplicate(patch(client, rep, "lead", other, mobile="138-0000-1111"), first["id"])
    assert len(client.get(f"{URL}/lead", headers=rep).json["data"]) == 2


def test_a_second_product_with_the_same_sku_is_409(client, rep):
    first = create(client, rep, "product", sku="SKU-1", name="Widget")

    assert_duplicate(post(client, rep, "product", {"sku": "SKU-1", "name": "Other widget"}), first["id"])


def test_a_second_account_with_the_same_name_is_409(client, rep):
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

    assert re.fullmatch(r"CT-\d{6}-\d{4}", first["contract_no"])
    assert first["contract_no"] == f"CT-{month}-0001"
    assert second["contract_no"] == f"CT-{month}-0002"
    assert invalid(post(client, rep, "contract", {"name": "X", "account": acc["id"], "amount": 1,
                                                  "contract_no": "CT-999"})) == {"contract_no": ["This field is read-only."]}
    assert invalid(patch(client, rep, "contract", first, contract_no="CT-999")) == {
        "contract_no": ["This field is read-only."]}
    assert get(client, rep, "contract", first["id"]).json["contract_no"] == f"CT-{month}-0001"
