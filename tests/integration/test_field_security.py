"""Field-level security over HTTP: hidden fields leave no trace, read-only fields cannot be written.

The side-channel test seeds records whose hidden fields hold unique marker numbers, then collects
every response body a restricted user can reach (records, lists with search, filters, sorts and
cursors, history, metadata, the OpenAPI document, explain, and the error answers to probing writes,
filters and sorts) and asserts no marker appears in any of them, in any usual formatting.

Rules under test (definitions/base/roles): rep — opportunity ``cost`` and ``margin`` (a formula over
cost) hidden, contract ``cost`` hidden and ``paid_amount`` read-only, account ``credit_limit``
read-only, product ``cost_price`` hidden; marketing — account ``credit_limit`` and ``annual_revenue``
hidden, product ``cost_price`` hidden.
"""

from __future__ import annotations

import base64
import io
import json
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher, profiles

from crm_platform.engine import compile_runtime, make_engine
from crm_platform.installation import Installation, Settings
from crm_platform.metadata import load_catalog

URL = "/api/records"

#: The marker values (exact, like every amount the API returns). Chosen so that no two share digits that
#: could be mistaken for each other, and so that the formula ``margin = amount - cost`` is itself a
#: distinctive number.
AMOUNT = Decimal("999999.99")          # opportunity amount: visible to the rep
COST_A = Decimal("987654.32")          # opportunity cost (hidden), first value
MARGIN_A = Decimal("12345.67")         # AMOUNT - COST_A (hidden formula)
COST_B = Decimal("876543.21")          # opportunity cost after the admin's update
MARGIN_B = Decimal("123456.78")        # AMOUNT - COST_B
CONTRACT_COST = Decimal("765432.19")   # contract cost (hidden from the rep)
PRODUCT_COST = Decimal("654321.09")    # product cost_price (hidden from rep and marketing)
CREDIT = Decimal("543210.98")          # account credit_limit (read-only for rep, hidden from marketing)
REVENUE = Decimal("321098.76")         # account annual_revenue (hidden from marketing)

REP_MARKERS = (COST_A, MARGIN_A, COST_B, MARGIN_B, CONTRACT_COST, PRODUCT_COST)
MARKETING_MARKERS = (CREDIT, REVENUE, PRODUCT_COST)


# -- the leak detector ------------------------------------------------------------------------------
def _patterns(value: Decimal) -> list[re.Pattern]:
    """Ways a number can show up in a body: 987654.32, 987654.3200001, 987654, 987,654.32, 98765432."""
    whole, cents = int(value), round(value * 100)
    edge_before, edge_after = r"(?<![0-9A-Za-z_\-])", r"(?![0-9A-Za-z_])"
    return [re.compile(f"{edge_before}{whole}{edge_after}"),
            re.compile(re.escape(f"{value:,.2f}")),
            re.compile(re.escape(f"{whole:,}") + r"\."),
            re.compile(f"{edge_before}{cents}{edge_after}")]


def leaks(text: str, markers) -> list[str]:
    """The markers (and the text around them) found in ``text``, also inside base64 list cursors."""
    texts = [text]
    for cursor in re.findall(r'"next_cursor":\s*"([A-Za-z0-9_\-]+)"', text):
        try:
            texts.append(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        except (ValueError, UnicodeDecodeError):
            texts.append(cursor)
    found = []
    for candidate in texts:
        for marker in markers:
            for pattern in _patterns(marker):
                for match in pattern.finditer(candidate):
                    found.append(f"{marker}: ...{candidate[max(0, match.start() - 60):match.end() + 20]}...")
    return found


class Bodies:
    """Every response a user received, labelled, for one leak check at the end."""

    def __init__(self, client, headers):
        self.client, self.headers, self.seen = client, headers, []

    def call(self, label, method, path, expect=None, **kwargs):
        response = getattr(self.client, method)(path, headers=self.headers, **kwargs)
        assert response.status_code < 500, (label, response.status_code, response.get_data(as_text=True))
        if expect is not None:
            assert response.status_code == expect, (label, response.status_code, response.get_data(as_text=True))
        self.seen.append((f"{label} [{method.upper()} {path} -> {response.status_code}]", response))
        return response

    def get(self, label, path, expect=200, **kwargs):
        return self.call(label, "get", path, expect, **kwargs)

    def assert_no_leak(self, markers):
        problems = {label: found for label, response in self.seen
                    if (found := leaks(response.get_data(as_text=True) + json.dumps(dict(response.headers)),
                                       markers))}
        assert problems == {}, json.dumps(problems, indent=1, ensure_ascii=False)


def test_the_detector_finds_every_formatting_of_a_marker():
    """The checks below are only worth something if the detector would notice a leak."""
    assert leaks('{"cost": 987654.32}', [COST_A])
    assert leaks('{"cost": 987654.3200000001}', [COST_A])
    assert leaks('{"cost": "987654"}', [COST_A])
    assert leaks("cost is 987,654.32", [COST_A])
    assert leaks('{"cents": 98765432}', [COST_A])
    assert leaks('{"margin": 12345.669999999925}', [MARGIN_A])
    cursor = base64.urlsafe_b64encode(json.dumps({"k": ["-cost", "id"], "v": [987654.32, "x"]}).encode()).decode()
    assert leaks(json.dumps({"paging": {"next_cursor": cursor.rstrip("=")}}), [COST_A])
    # ...and does not fire on ids, timestamps or other numbers
    assert not leaks('{"id": "01a20138-9876-54ab-9876-54cd987654ef", "at": "2026-01-01T09:87:65.432100+00:00", '
                     '"amount": 1987654.32, "n": 9876543}', [COST_A])


# -- data -------------------------------------------------------------------------------------------
@pytest.fixture
def seeded(installation, org):
    """Records owned by rep (Shanghai) with marker values in their restricted fields, made by the system."""
    system, rep = installation.records(None), org["rep"].id
    account = system.create("account", {"name": "Secretive Holdings", "owner": rep, "phone": "021-66668888",
                                        "credit_limit": CREDIT, "annual_revenue": REVENUE})
    opportunity = system.create("opportunity", {"name": "Harbour crane deal", "account": account["id"],
                                                "expected_close_date": "2026-06-30", "owner": rep,
                                                "amount": AMOUNT, "cost": COST_A})
    # the contract's amount stays within the account's credit limit (the base rule within_credit_limit)
    contract = system.create("contract", {"name": "Crane supply", "account": account["id"],
                                          "opportunity": opportunity["id"], "amount": 500000, "owner": rep,
                                          "cost": CONTRACT_COST})
    product = system.create("product", {"sku": "CRANE-1", "name": "Harbour crane", "list_price": 1000,
                                        "cost_price": PRODUCT_COST})
    other = system.create("account", {"name": "Hangzhou Hidden Co", "owner": org["rep2"].id,
                                      "phone": "0571-55554444", "credit_limit": CREDIT, "annual_revenue": REVENUE})
    return SimpleNamespace(account=account, opportunity=opportunity, contract=contract, product=product,
                           other_account=other)


def stored(installation, entity, record_id) -> dict:
    return installation.records(None).get(entity, record_id)


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]


def comparable(body: dict) -> str:
    """An error body as text to compare across requests: without the id every answer carries for itself."""
    assert body.get("request_id"), body
    return json.dumps({key: value for key, value in body.items() if key != "request_id"}, sort_keys=True)


def test_the_seeded_markers_are_visible_to_a_role_without_field_rules(client, auth, seeded):
    """Control: the data really holds the markers, and an unrestricted view shows them (so the
    restricted views below could leak them)."""
    manager = auth("manager")
    opportunity = client.get(f"{URL}/opportunity/{seeded.opportunity['id']}", headers=manager).json
    assert opportunity["cost"] == COST_A and opportunity["margin"] == MARGIN_A
    assert client.get(f"{URL}/contract/{seeded.contract['id']}", headers=manager).json["cost"] == CONTRACT_COST
    assert client.get(f"{URL}/product/{seeded.product['id']}", headers=manager).json["cost_price"] == PRODUCT_COST
    account = client.get(f"{URL}/account/{seeded.account['id']}", headers=manager).json
    assert (account["credit_limit"], account["annual_revenue"]) == (CREDIT, REVENUE)
    history = client.get(f"{URL}/opportunity/{seeded.opportunity['id']}/history", headers=manager)
    assert leaks(history.get_data(as_text=True), [COST_A])


# -- THE side-channel test -------------------------------------------------------------------------
def test_no_response_the_rep_can_reach_reveals_a_hidden_value(client, auth, seeded, org):
    rep, admin = auth("rep"), auth("admin")
    opp_id, contract_id = seeded.opportunity["id"], seeded.contract["id"]
    seen = Bodies(client, rep)

    def walk(label):
        """Everything readable, in every shape, at the current state of the data."""
        seen.get(f"{label}: get opportunity", f"{URL}/opportunity/{opp_id}")
        for query in ({}, {"q": "crane"}, {"q": "987654"}, {"q": "987654.32"}, {"q": "12345"},
                      {"filter[amount][gte]": "0"}, {"filter[amount][gte]": "999999.99", "count": "true"},
                      {"filter[stage]": "initial_contact"}, {"filter[name][contains]": "crane"},
                      {"sort": "-amount"}, {"sort": "name,-updated_at"}, {"sort": "-amount", "limit": "1"},
                      {"count": "true", "page": "1", "limit": "1"}):
            seen.get(f"{label}: list opportunities {query}", f"{URL}/opportunity", query_string=query)
        seen.get(f"{label}: history", f"{URL}/opportunity/{opp_id}/history")
        seen.get(f"{label}: get contract", f"{URL}/contract/{contract_id}")
        for query in ({}, {"q": "crane"}, {"q": "765432"}, {"sort": "-amount"}, {"filter[amount][gt]": "1"}):
            seen.get(f"{label}: list contracts {query}", f"{URL}/contract", query_string=query)
        seen.get(f"{label}: contract history", f"{URL}/contract/{contract_id}/history")
        seen.get(f"{label}: get product", f"{URL}/product/{seeded.product['id']}")
        for query in ({}, {"q": "crane"}, {"q": "654321"}, {"sort": "-list_price"}):
            seen.get(f"{label}: list products {query}", f"{URL}/product", query_string=query)
        seen.get(f"{label}: product history", f"{URL}/product/{seeded.product['id']}/history")
        seen.get(f"{label}: account of the deal", f"{URL}/account/{seeded.account['id']}")
        for field in (None, "cost", "margin", "amount"):
            query = {"entity": "opportunity", "action": "read", "id": opp_id, **({"field": field} if field else {})}
            seen.get(f"{label}: explain {field}", "/api/permissions/explain", query_string=query)

    walk("before")
    seen.get("entity list", "/api/meta/entities")
    for entity in ("opportunity", "contract", "product", "account"):
        seen.get(f"meta {entity}", f"/api/meta/entities/{entity}")
    seen.get("openapi", "/api/openapi.json")

    # probing writes, filters and sorts: each refused, none revealing anything
    version = seeded.opportunity["version"]
    seen.call("write cost", "patch", f"{URL}/opportunity/{opp_id}", 403, json={"version": version, "cost": 1})
    seen.call("write margin", "patch", f"{URL}/opportunity/{opp_id}", 403, json={"version": version, "margin": 1})
    seen.call("write cost with a name", "patch", f"{URL}/opportunity/{opp_id}", 403,
              json={"version": version, "name": "Renamed", "cost": 0})
    seen.call("create with cost", "post", f"{URL}/opportunity", 403,
              json={"name": "Probe", "account": seeded.account["id"], "expected_close_date": "2026-07-01", "cost": 5})
    seen.call("write contract cost", "patch", f"{URL}/contract/{contract_id}", 403,
              json={"version": seeded.contract["version"], "cost": 1})
    for query in ({"filter[cost][gte]": "900000"}, {"filter[cost][lt]": "1000000"}, {"filter[cost]": "987654.32"},
                  {"filter[cost][isnull]": "false"}, {"filter[margin][gt]": "0"}, {"filter[cost][in]": "1,2"}):
        seen.get(f"filter {query}", f"{URL}/opportunity", 400, query_string=query)
    for sort in ("cost", "-cost", "margin", "amount,-cost"):
        seen.get(f"sort {sort}", f"{URL}/opportunity", 400, query_string={"sort": sort})
    seen.get("filter contract cost", f"{URL}/contract", 400, query_string={"filter[cost][gt]": "0"})
    seen.get("sort contract cost", f"{URL}/contract", 400, query_string={"sort": "-cost"})
    seen.get("filter product cost", f"{URL}/product", 400, query_string={"filter[cost_price][gt]": "0"})
    seen.get("sort product cost", f"{URL}/product", 400, query_string={"sort": "cost_price"})
    seen.call("invalid write", "patch", f"{URL}/opportunity/{opp_id}", 422,
              json={"version": version, "amount": "lots", "stage": "won"})
    seen.call("stale write", "patch", f"{URL}/opportunity/{opp_id}", 409, json={"version": version + 7, "name": "x"})

    # allowed writes: their answers carry the record, which must be without its hidden fields
    updated = seen.call("rename", "patch", f"{URL}/opportunity/{opp_id}", 200,
                        json={"version": version, "next_step": "Site visit"}).json
    seen.call("create", "post", f"{URL}/opportunity", 201,
              json={"name": "Second crane", "account": seeded.account["id"], "expected_close_date": "2026-08-01",
                    "amount": 5000})
    seen.call("duplicate of own account", "post", f"{URL}/account", 409, json={"name": "Secretive Holdings"})
    seen.call("duplicate of an unseen account", "post", f"{URL}/account", 409, json={"name": "Hangzhou Hidden Co"})
    seen.call("duplicate phone of an unseen account", "post", f"{URL}/account", 409,
              json={"name": "Probe Co", "phone": "0571-55554444"})

    # the admin changes the hidden value (A → B) on both records; the rep looks again
    response = client.patch(f"{URL}/opportunity/{opp_id}", json={"version": updated["version"], "cost": COST_B},
                            headers=admin)
    assert response.status_code == 200 and response.json["margin"] == MARGIN_B
    response = client.patch(f"{URL}/contract/{contract_id}",
                            json={"version": seeded.contract["version"], "cost": CONTRACT_COST + 1}, headers=admin)
    assert response.status_code == 200
    walk("after the admin's update")

    seen.assert_no_leak(REP_MARKERS)
    assert len(seen.seen) > 90  # the walk really covered the surface


def test_hidden_fields_are_absent_from_every_record_the_rep_receives(client, auth, seeded):
    rep = auth("rep")
    opp_id = seeded.opportunity["id"]
    records = {
        "get": [client.get(f"{URL}/opportunity/{opp_id}", headers=rep).json],
        "list": client.get(f"{URL}/opportunity", headers=rep).json["data"],
        "search": client.get(f"{URL}/opportunity", query_string={"q": "harbour"}, headers=rep).json["data"],
        "patch": [client.patch(f"{URL}/opportunity/{opp_id}", json={"version": 1, "probability": 30},
                               headers=rep).json],
        "create": [client.post(f"{URL}/opportunity", headers=rep, json={
            "name": "New one", "account": seeded.account["id"], "expected_close_date": "2026-09-30"}).json],
    }
    assert all(len(rows) >= 1 for rows in records.values()), records
    for how, rows in records.items():
        for record in rows:
            assert "name" in record and "weighted_amount" in record, (how, record)
            assert {"cost", "margin"} & set(record) == set(), (how, record)
    contracts = [client.get(f"{URL}/contract/{seeded.contract['id']}", headers=rep).json,
                 *client.get(f"{URL}/contract", headers=rep).json["data"]]
    assert len(contracts) == 2 and all("cost" not in c and "paid_amount" in c and "amount" in c for c in contracts)
    products = [client.get(f"{URL}/product/{seeded.product['id']}", headers=rep).json,
                *client.get(f"{URL}/product", headers=rep).json["data"]]
    assert len(products) == 2 and all("cost_price" not in p and p["list_price"] == 1000 for p in products)


def test_a_formula_over_a_hidden_field_is_hidden_too(client, auth, seeded):
    """margin = amount - cost: showing it would reveal cost, so the rep sees neither."""
    rep, manager = auth("rep"), auth("manager")
    opp_id = seeded.opportunity["id"]
    assert client.get(f"{URL}/opportunity/{opp_id}", headers=manager).json["margin"] == MARGIN_A
    record = client.get(f"{URL}/opportunity/{opp_id}", headers=rep).json
    assert "margin" not in record
    assert record["weighted_amount"] == AMOUNT * 10 / 100  # a formula over visible fields stays
    names = {f["name"] for f in client.get("/api/meta/entities/opportunity", headers=rep).json["fields"]}
    assert "margin" not in names and "weighted_amount" in names
    explained = client.get("/api/permissions/explain", headers=rep, query_string={
        "entity": "opportunity", "action": "read", "id": opp_id, "field": "margin"}).json
    assert explained["allowed"] is False
    assert any("hidden" in reason and "margin" in reason for reason in explained["reasons"]), explained
    assert error(client.get(f"{URL}/opportunity", query_string={"sort": "-margin"}, headers=rep), 400, "malformed")


# -- filters and sorts on hidden fields: exactly like unknown fields ----------------------------------
HIDDEN = [("rep", "opportunity", "cost"), ("rep", "opportunity", "margin"), ("rep", "contract", "cost"),
          ("rep", "product", "cost_price"), ("marketing", "account", "credit_limit"),
          ("marketing", "account", "annual_revenue"), ("marketing", "product", "cost_price")]


@pytest.mark.parametrize("user,entity,field", HIDDEN)
def test_filtering_on_a_hidden_field_is_refused_exactly_like_an_unknown_field(client, auth, seeded, user, entity,
                                                                              field):
    headers = auth(user)
    for op, low, high in [("gte", "0", "99999999"), ("lt", "0", "99999999"), ("eq", "0", "987654.32"),
                          ("isnull", "true", "false"), ("in", "1,2", "3"), ("ne", "0", "1")]:
        answers = []
        for name, value in ((field, low), (field, high), ("no_such_field", low)):
            response = client.get(f"{URL}/{entity}", headers=headers,
                                  query_string={f"filter[{name}][{op}]": value, "count": "true"})
            body = error(response, 400, "malformed")
            answers.append(comparable(body).replace(name, "<FIELD>"))
        # whatever the probe value, the answer is the same, and the same as for a field that does not exist
        assert answers[0] == answers[1] == answers[2], (op, answers)
        assert "no such field" in answers[0]


@pytest.mark.parametrize("user,entity,field", HIDDEN)
def test_sorting_on_a_hidden_field_is_refused_exactly_like_an_unknown_field(client, auth, seeded, user, entity,
                                                                            field):
    headers = auth(user)
    for template in ("{}", "-{}", "name,{}", "-{},id"):
        answers = []
        for name in (field, "no_such_field"):
            response = client.get(f"{URL}/{entity}", headers=headers, query_string={"sort": template.format(name)})
            answers.append(comparable(error(response, 400, "malformed")).replace(name, "<FIELD>"))
        assert answers[0] == answers[1], answers
        assert "Cannot sort on" in answers[0]


def test_the_same_filters_work_for_a_role_that_may_see_the_field(client, auth, seeded):
    """Control for the two tests above: the refusal is about the caller, not the query."""
    manager = auth("manager")
    found = client.get(f"{URL}/opportunity", headers=manager,
                       query_string={"filter[cost][gte]": "900000", "sort": "-cost", "count": "true"}).json
    assert [r["id"] for r in found["data"]] == [seeded.opportunity["id"]] and found["paging"]["total"] == 1
    assert client.get(f"{URL}/account", headers=auth("admin"),
                      query_string={"filter[credit_limit][gt]": "0", "sort": "annual_revenue"}).status_code == 200


# -- history --------------------------------------------------------------------------------------
def test_history_drops_changes_of_hidden_fields(client, auth, seeded):
    rep, admin = auth("rep"), auth("admin")
    opp_id = seeded.opportunity["id"]
    first = client.patch(f"{URL}/opportunity/{opp_id}", json={"version": 1, "cost": COST_B, "next_step": "Call CFO"},
                         headers=admin)
    assert first.status_code == 200, first.json
    second = client.patch(f"{URL}/opportunity/{opp_id}", json={"version": 2, "cost": COST_A}, headers=admin)
    assert second.status_code == 200, second.json

    full = client.get(f"{URL}/opportunity/{opp_id}/history", headers=admin).json["data"]
    cost_changes = [(c["old"], c["new"]) for e in full for c in e["changes"] if c["field"] == "cost"]
    assert cost_changes == [(None, COST_A), (COST_A, COST_B), (COST_B, COST_A)]  # control: the audit holds them

    response = client.get(f"{URL}/opportunity/{opp_id}/history", headers=rep)
    assert response.status_code == 200
    entries = response.json["data"]
    fields = [c["field"] for e in entries for c in e["changes"]]
    assert "cost" not in fields and "margin" not in fields
    assert "next_step" in fields and "amount" in fields  # visible changes are still there
    next_step = [c for e in entries for c in e["changes"] if c["field"] == "next_step"]
    assert next_step == [{"field": "next_step", "old": None, "new": "Call CFO"}]
    assert leaks(response.get_data(as_text=True), REP_MARKERS) == []


def test_marketing_history_of_an_account_drops_credit_limit_and_revenue(client, auth, seeded):
    admin, marketing = auth("admin"), auth("marketing")
    account_id = seeded.account["id"]
    response = client.patch(f"{URL}/account/{account_id}", headers=admin,
                            json={"version": 1, "credit_limit": CREDIT + 1, "annual_revenue": REVENUE + 1,
                                  "level": "A"})
    assert response.status_code == 200, response.json
    history = client.get(f"{URL}/account/{account_id}/history", headers=marketing)
    assert history.status_code == 200
    fields = [c["field"] for e in history.json["data"] for c in e["changes"]]
    assert "level" in fields and "name" in fields
    assert {"credit_limit", "annual_revenue"} & set(fields) == set()
    assert leaks(history.get_data(as_text=True), [CREDIT, CREDIT + 1, REVENUE, REVENUE + 1]) == []
    # control: the rep may read credit_limit, so the rep's history has it
    rep_history = client.get(f"{URL}/account/{account_id}/history", headers=auth("rep")).json["data"]
    rep_fields = [c["field"] for e in rep_history for c in e["changes"]]
    assert "credit_limit" in rep_fields


# -- metadata ------------------------------------------------------------------------------------------
def _mentions(entity_doc: dict) -> dict[str, list]:
    """Every place an entity description names fields."""
    forms = [n for form in entity_doc["forms"] for tab in form["tabs"] for section in tab["sections"]
             for column in section["columns"] for n in column]
    views = [n.lstrip("-") for v in entity_doc["list_views"] for n in (*v["columns"], *v["sort"], *v["filters"],
                                                                      *([v["group_by"]] if v["group_by"] else []))]
    kanban = list(entity_doc["kanban"]["card_fields"]) if entity_doc.get("kanban") else []
    return {"fields": [f["name"] for f in entity_doc["fields"]], "forms": forms, "list_views": views,
            "kanban": kanban, "search_fields": list(entity_doc["search_fields"]),
            "default_sort": [n.lstrip("-") for n in entity_doc["default_sort"]]}


@pytest.mark.parametrize("user,entity,hidden", [
    ("rep", "opportunity", {"cost", "margin"}), ("rep", "contract", {"cost"}), ("rep", "product", {"cost_price"}),
    ("marketing", "account", {"credit_limit", "annual_revenue"}), ("marketing", "product", {"cost_price"})])
def test_meta_omits_hidden_fields_everywhere(client, auth, user, entity, hidden):
    restricted = client.get(f"/api/meta/entities/{entity}", headers=auth(user))
    full = client.get(f"/api/meta/entities/{entity}", headers=auth("admin")).json
    assert restricted.status_code == 200
    assert hidden <= set(_mentions(full)["fields"])  # control: the definition has them
    for place, names in _mentions(restricted.json).items():
        assert hidden & set(names) == set(), (place, names)
    text = restricted.get_data(as_text=True)
    for name in hidden:
        assert f'"{name}"' not in text, name
    assert len(restricted.json["fields"]) == len(full["fields"]) - len(hidden)


def test_meta_shows_the_opportunity_form_without_cost_and_margin(client, auth):
    """The concrete layout a rep's UI renders: the forecast section keeps amount/probability/weighted."""
    doc = client.get("/api/meta/entities/opportunity", headers=auth("rep")).json
    default = next(f for f in doc["forms"] if f["name"] == "default")
    forecast = next(s for t in default["tabs"] for s in t["sections"] if s.get("name") == "forecast")
    assert [n for column in forecast["columns"] for n in column] == ["amount", "probability", "weighted_amount"]
    assert doc["kanban"]["card_fields"] == ["account", "amount", "expected_close_date", "owner"]


@pytest.mark.parametrize("user,entity,field,readonly", [
    ("rep", "account", "credit_limit", True), ("manager", "account", "credit_limit", False),
    ("rep", "account", "annual_revenue", False), ("rep", "contract", "paid_amount", True),
    ("rep", "opportunity", "amount", False), ("rep", "opportunity", "weighted_amount", True)])
def test_meta_marks_fields_the_caller_may_read_but_not_write(client, auth, user, entity, field, readonly):
    fields = {f["name"]: f for f in client.get(f"/api/meta/entities/{entity}", headers=auth(user)).json["fields"]}
    assert fields[field]["readonly"] is readonly


# -- writing fields one may not write -------------------------------------------------------------------
def test_writing_a_hidden_field_is_403_naming_it_and_changes_nothing(client, auth, seeded, installation):
    rep = auth("rep")
    opp_id = seeded.opportunity["id"]
    before = stored(installation, "opportunity", opp_id)
    for body, named in [({"cost": 1}, {"cost"}), ({"margin": 1}, {"margin"}),
                        ({"name": "Renamed", "cost": 0, "margin": 0}, {"cost", "margin"}),
                        ({"cost": None}, {"cost"})]:
        response = client.patch(f"{URL}/opportunity/{opp_id}", json={"version": 1, **body}, headers=rep)
        err = error(response, 403, "forbidden")
        assert set(err["fields"]) == named, err
        assert all(isinstance(m, str) and m for ms in err["fields"].values() for m in ms)
    assert stored(installation, "opportunity", opp_id) == before

    count = len(installation.records(None).list("opportunity")["data"])
    response = client.post(f"{URL}/opportunity", headers=rep, json={
        "name": "Cheap", "account": seeded.account["id"], "expected_close_date": "2026-07-01", "cost": 5})
    assert set(error(response, 403, "forbidden")["fields"]) == {"cost"}
    assert len(installation.records(None).list("opportunity")["data"]) == count

    contract = stored(installation, "contract", seeded.contract["id"])
    response = client.patch(f"{URL}/contract/{seeded.contract['id']}", json={"version": 1, "cost": 1}, headers=rep)
    assert set(error(response, 403, "forbidden")["fields"]) == {"cost"}
    assert stored(installation, "contract", seeded.contract["id"]) == contract


def test_a_read_only_field_can_be_read_but_not_written(client, auth, seeded, installation):
    rep = auth("rep")
    account_id = seeded.account["id"]
    assert client.get(f"{URL}/account/{account_id}", headers=rep).json["credit_limit"] == CREDIT
    before = stored(installation, "account", account_id)

    for body, named in [({"credit_limit": 1}, {"credit_limit"}), ({"credit_limit": CREDIT * 10, "level": "A"},
                                                                   {"credit_limit"}),
                        ({"credit_limit": None, "last_visited_at": "2026-01-01T00:00:00Z"},
                         {"credit_limit", "last_visited_at"})]:
        response = client.patch(f"{URL}/account/{account_id}", json={"version": 1, **body}, headers=rep)
        assert set(error(response, 403, "forbidden")["fields"]) == named
    after = stored(installation, "account", account_id)
    assert after == before and after["credit_limit"] == CREDIT and after["level"] is None

    response = client.post(f"{URL}/account", json={"name": "Fresh Co", "credit_limit": 10 ** 6}, headers=rep)
    assert set(error(response, 403, "forbidden")["fields"]) == {"credit_limit"}
    assert client.get(f"{URL}/account", query_string={"filter[name]": "Fresh Co"}, headers=rep).json["data"] == []

    response = client.patch(f"{URL}/contract/{seeded.contract['id']}", json={"version": 1, "paid_amount": 800000},
                            headers=rep)
    assert set(error(response, 403, "forbidden")["fields"]) == {"paid_amount"}
    assert stored(installation, "contract", seeded.contract["id"])["paid_amount"] == 0  # the sum of no payments

    # control: a role without the rule may write it
    response = client.patch(f"{URL}/account/{account_id}", json={"version": 1, "credit_limit": 1},
                            headers=auth("manager"))
    assert response.status_code == 200 and response.json["credit_limit"] == 1


# -- marketing -----------------------------------------------------------------------------------------
def test_no_response_marketing_can_reach_reveals_credit_limit_or_revenue(client, auth, seeded, installation):
    marketing = auth("marketing")
    seen = Bodies(client, marketing)
    account_id = seeded.account["id"]
    installation.records(None).create("lead", {"name": "Lead of Secretive", "company": "Secretive Holdings"})

    record = seen.get("get account", f"{URL}/account/{account_id}").json
    assert record["name"] == "Secretive Holdings" and {"credit_limit", "annual_revenue"} & set(record) == set()
    for query in ({}, {"q": "secretive"}, {"q": "543210"}, {"q": "021-6666"}, {"sort": "-name"},
                  {"filter[level][isnull]": "true", "count": "true"}, {"limit": "1"}, {"page": "2", "limit": "1"}):
        page = seen.get(f"list accounts {query}", f"{URL}/account", query_string=query).json
        assert all({"credit_limit", "annual_revenue"} & set(r) == set() for r in page["data"])
    seen.get("history", f"{URL}/account/{account_id}/history")
    seen.get("other account", f"{URL}/account/{seeded.other_account['id']}")
    seen.get("meta account", "/api/meta/entities/account")
    seen.get("entities", "/api/meta/entities")
    seen.get("openapi", "/api/openapi.json")
    seen.get("products", f"{URL}/product")
    seen.get("leads", f"{URL}/lead")
    for field in ("credit_limit", "annual_revenue", None):
        seen.get(f"explain {field}", "/api/permissions/explain", query_string={
            "entity": "account", "action": "read", "id": account_id, **({"field": field} if field else {})})
    for query in ({"filter[credit_limit][gt]": "500000"}, {"filter[annual_revenue][lte]": "400000"},
                  {"sort": "-credit_limit"}, {"sort": "annual_revenue"}):
        seen.get(f"probe {query}", f"{URL}/account", 400, query_string=query)
    seen.call("patch", "patch", f"{URL}/account/{account_id}", 403, json={"version": 1, "credit_limit": 1})
    seen.call("create", "post", f"{URL}/account", 403, json={"name": "X", "annual_revenue": 1})
    seen.call("opportunity", "get", f"{URL}/opportunity/{seeded.opportunity['id']}", 404)
    seen.call("opportunity list", "get", f"{URL}/opportunity", 404)

    client.patch(f"{URL}/account/{account_id}", json={"version": 1, "credit_limit": CREDIT + 1}, headers=auth("admin"))
    seen.get("history after update", f"{URL}/account/{account_id}/history")
    seen.get("get after update", f"{URL}/account/{account_id}")
    seen.assert_no_leak([*MARKETING_MARKERS, CREDIT + 1])


# -- a pack with extra rules: a hidden search field, and a formula whose input alone is hidden -----------
#: lead.mobile (a search field and a duplicate rule's field) hidden from the rep; opportunity.margin
#: declared merely read-only — it must still be hidden, because it is computed from the hidden cost;
#: account.location, a geo field (stored in two columns, location_lat and location_lon), hidden;
#: contract.attachment, a file field, hidden.
EXTRA_RULES = {"name": "rep", "entities": {"lead": {"fields": {"mobile": "hidden"}},
                                           "opportunity": {"fields": {"margin": "read"}},
                                           "account": {"fields": {"location": "hidden"}},
                                           "contract": {"fields": {"attachment": "hidden"}}}}
SECRET_PLACE = {"lat": 31.2304, "lon": 121.4737}
SECRET_MOBILE = "13912345678"


@pytest.fixture(scope="module")
def extra_rules_runtime(tmp_path_factory):
    pack = tmp_path_factory.mktemp("packs") / "extra_rules"
    (pack / "roles").mkdir(parents=True)
    (pack / "pack.json").write_text(json.dumps({"name": "extra_rules", "version": "0.1.0",
                                                "label": {"en": "Extra field rules", "zh": "额外字段规则"},
                                                "extends": ["base"]}))
    (pack / "roles" / "rep.json").write_text(json.dumps(EXTRA_RULES))
    runtime = compile_runtime(load_catalog([str(pack)]))
    assert "mobile" in runtime.catalog.entities["lead"].search_fields
    assert dict(runtime.policies["rep"]["opportunity"].field_rules) == {"cost": "hidden", "margin": "read"}
    return runtime


@pytest.fixture
def custom_world(extra_rules_runtime, database):
    from crm_platform.web import create_app
    url, options = database
    inst = Installation(Settings(database_url=url), make_engine(url, **options), extra_rules_runtime,
                        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    inst.migrate()
    inst.accounts.create_team("Shanghai")
    rep = inst.accounts.create_user("rep", "rep-password", "rep", "Shanghai")
    inst.accounts.create_user("admin", "admin-password", "admin", "Shanghai")
    system = inst.records(None)
    lead = system.create("lead", {"name": "Mia Sun", "company": "Orbit", "mobile": SECRET_MOBILE, "owner": rep})
    account = system.create("account", {"name": "Orbit Ltd", "owner": rep, "location": SECRET_PLACE})
    opportunity = system.create("opportunity", {"name": "Orbit deal", "account": account["id"], "owner": rep,
                                                "expected_close_date": "2026-06-30", "amount": AMOUNT, "cost": COST_A})
    contract = system.create("contract", {"name": "Orbit contract", "account": account["id"], "owner": rep,
                                          "amount": 100})
    app = create_app(installation=inst)
    app.config["TESTING"] = True
    client = app.test_client()

    def login(username):
        token = client.post("/api/auth/token", json={"username": username, "password": f"{username}-password"})
        return {"Authorization": f"Bearer {token.json['token']}"}
    yield SimpleNamespace(client=client, rep=login("rep"), admin=login("admin"), lead=lead, opportunity=opportunity,
                          account=account, contract=contract)
    inst.db.dispose()


def test_search_skips_a_hidden_search_field(custom_world):
    w = custom_world
    ids = lambda response: [r["id"] for r in response.json["data"]]
    for needle in (SECRET_MOBILE, "1391234", "5678"):
        assert ids(w.client.get(f"{URL}/lead", query_string={"q": needle}, headers=w.admin)) == [w.lead["id"]]
        response = w.client.get(f"{URL}/lead", query_string={"q": needle, "count": "true"}, headers=w.rep)
        assert response.status_code == 200
        assert ids(response) == [] and response.json["paging"]["total"] == 0, needle
    assert ids(w.client.get(f"{URL}/lead", query_string={"q": "mia"}, headers=w.rep)) == [w.lead["id"]]
    record = w.client.get(f"{URL}/lead/{w.lead['id']}", headers=w.rep).json
    assert "mobile" not in record and record["name"] == "Mia Sun"
    assert error(w.client.get(f"{URL}/lead", query_string={"filter[mobile]": SECRET_MOBILE}, headers=w.rep),
                 400, "malformed")
    assert error(w.client.get(f"{URL}/lead", query_string={"sort": "mobile"}, headers=w.rep), 400, "malformed")
    meta = w.client.get("/api/meta/entities/lead", headers=w.rep).json
    assert "mobile" not in meta["search_fields"] and "name" in meta["search_fields"]
    assert SECRET_MOBILE not in w.client.get(f"{URL}/lead/{w.lead['id']}/history", headers=w.rep).get_data(as_text=True)


def test_a_formula_over_a_hidden_field_is_hidden_even_when_declared_readable(custom_world):
    w = custom_world
    opp_id = w.opportunity["id"]
    assert w.client.get(f"{URL}/opportunity/{opp_id}", headers=w.admin).json["margin"] == MARGIN_A
    record = w.client.get(f"{URL}/opportunity/{opp_id}", headers=w.rep)
    assert record.status_code == 200 and {"cost", "margin"} & set(record.json) == set()
    listed = w.client.get(f"{URL}/opportunity", headers=w.rep)
    assert [r["id"] for r in listed.json["data"]] == [opp_id] and "margin" not in listed.json["data"][0]
    names = {f["name"] for f in w.client.get("/api/meta/entities/opportunity", headers=w.rep).json["fields"]}
    assert {"cost", "margin"} & names == set() and "weighted_amount" in names
    explained = w.client.get("/api/permissions/explain", headers=w.rep, query_string={
        "entity": "opportunity", "action": "read", "field": "margin"}).json
    assert explained["allowed"] is False and any("hidden" in r for r in explained["reasons"]), explained
    assert leaks(record.get_data(as_text=True) + listed.get_data(as_text=True), [COST_A, MARGIN_A]) == []


def test_meta_duplicate_rules_do_not_name_a_hidden_field(custom_world):
    """Found while writing these tests: duplicate_rules were described unfiltered (lead 'same_mobile' →
    fields ['mobile'] for a rep who may not see mobile)."""
    w = custom_world
    meta = w.client.get("/api/meta/entities/lead", headers=w.rep).json
    assert "mobile" not in {f["name"] for f in meta["fields"]}  # the field itself is gone...
    named = [n for rule in meta["duplicate_rules"] for n in rule["fields"]]
    assert "mobile" not in named, meta["duplicate_rules"]  # ...and no rule names it


def test_a_hidden_geo_field_cannot_be_probed_through_its_storage_columns(custom_world):
    """Found while writing these tests: filter[location_lat][gt]=31 / sort=-location_lat were accepted for a
    hidden geo field (SQLite: 200 with the record, so bisecting recovered the coordinates; PostgreSQL: 500)."""
    w = custom_world
    record = w.client.get(f"{URL}/account/{w.account['id']}", headers=w.rep).json
    assert "location" not in record and not any(k.startswith("location") for k in record)
    for query in ({"filter[location_lat][gt]": "31"}, {"filter[location_lat][gt]": "32"},
                  {"filter[location_lon][lt]": "122"}, {"filter[location_lat]": "31.2304"}):
        name = next(iter(query)).split("]")[0].removeprefix("filter[")
        unknown = {k.replace(name, "no_such_field"): v for k, v in query.items()}
        probe = w.client.get(f"{URL}/account", query_string=query, headers=w.rep)
        baseline = w.client.get(f"{URL}/account", query_string=unknown, headers=w.rep)
        assert baseline.status_code == 400
        assert probe.status_code == 400, (query, probe.status_code, probe.get_data(as_text=True)[:300])
        assert probe.json["error"]["message"].replace(name, "<F>") == baseline.json["error"]["message"].replace(
            "no_such_field", "<F>")
    for sort in ("location_lat", "-location_lon"):
        assert w.client.get(f"{URL}/account", query_string={"sort": sort}, headers=w.rep).status_code == 400, sort


def test_a_file_in_a_hidden_file_field_cannot_be_downloaded(custom_world):
    """A file is readable through a record only if the field holding it is visible to the caller."""
    w = custom_world
    upload = w.client.post("/api/files", data={"file": (io.BytesIO(b"confidential scan"), "scan.pdf")},
                           headers=w.admin, content_type="multipart/form-data")
    assert upload.status_code == 201
    file_id = upload.json["id"]
    attached = w.client.patch(f"{URL}/contract/{w.contract['id']}", json={"version": 1, "attachment": file_id},
                              headers=w.admin)
    assert attached.status_code == 200 and attached.json["attachment"] == file_id
    assert w.client.get(f"/api/files/{file_id}", headers=w.admin).data == b"confidential scan"

    record = w.client.get(f"{URL}/contract/{w.contract['id']}", headers=w.rep)
    assert record.status_code == 200 and "attachment" not in record.json
    assert file_id not in record.get_data(as_text=True)
    download = w.client.get(f"/api/files/{file_id}", headers=w.rep)
    assert download.status_code == 404 and b"confidential" not in download.data
    history = w.client.get(f"{URL}/contract/{w.contract['id']}/history", headers=w.rep)
    assert file_id not in history.get_data(as_text=True)
    refused = w.client.patch(f"{URL}/contract/{w.contract['id']}", json={"version": 2, "attachment": None},
                             headers=w.rep)
    assert refused.status_code == 403 and list(refused.json["error"]["fields"]) == ["attachment"]


@pytest.mark.parametrize("user", ["rep", "marketing", "admin"])
def test_a_listed_record_is_exactly_the_record_read_by_id(client, auth, seeded, user):
    """Lists render rows through their own path (converted in place, hidden fields dropped): each item
    must be the same JSON, key for key and in the same order, as the record read by id."""
    compared = 0
    for entity in ("opportunity", "account", "contract", "product", "lead"):
        listed = client.get(f"/api/records/{entity}?limit=200", headers=auth(user))
        if listed.status_code == 404:  # an entity this role does not see at all
            continue
        assert listed.status_code == 200, listed.json
        for item in json.loads(listed.data, parse_float=Decimal)["data"]:
            one = client.get(f"/api/records/{entity}/{item['id']}", headers=auth(user))
            assert list(item.items()) == list(json.loads(one.data, parse_float=Decimal).items())
            compared += 1
    assert compared >= 3
