"""HTTP API: amounts are exact. ``decimal``/``currency``/``percent`` values travel as Decimal from the
request's JSON to the database and back — through create, get, list, PATCH and history — and every
value inside a field's places and its column's range (``NUMERIC(20, places)``) reads back digit for digit.

Request bodies are written by hand so numbers go exactly as typed; responses are read with
``json.loads(..., parse_float=Decimal)`` (what a decimal-aware client does) and as raw text, so a
binary float anywhere on the way would show.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from argon2 import PasswordHasher, profiles

from crm_platform.engine import compile_runtime, make_engine
from crm_platform.engine.decimals import rewrite_sqlite_keys
from crm_platform.installation import Installation, Settings
from crm_platform.metadata import load_catalog

URL = "/api/records"
EXACT = ["12345678901234.56", "9999999999999999.99", "0.01", "1000000.10"]
LARGEST = "999999999999999999.99"  # NUMERIC(20, 2): 18 whole digits, 2 places
TOO_LARGE = "Too large: at most 18 digits before the decimal point."
PRECISION = "At most 2 decimal places."
NOT_A_NUMBER = "Must be a number."


@pytest.fixture
def admin(auth):
    return auth("admin")


def body(response):
    return json.loads(response.data, parse_float=Decimal)


def raw(response) -> str:
    return response.get_data(as_text=True).replace(" ", "")


def send(client, method: str, url: str, headers, text: str):
    """A request with a hand-written JSON body."""
    return client.open(url, method=method, data=text, content_type="application/json", headers=headers)


def new_account(client, headers) -> str:
    response = client.post(f"{URL}/account", json={"name": f"Account {uuid.uuid4().hex[:8]}"}, headers=headers)
    assert response.status_code == 201, response.data
    return response.json["id"]


def opportunity_body(account: str, amount: str, extra: str = "") -> str:
    """An opportunity's JSON with ``amount`` inserted as given (a JSON number, or a quoted string)."""
    return (f'{{"name": "Deal {uuid.uuid4().hex[:6]}", "account": "{account}", '
            f'"expected_close_date": "2026-06-30", "amount": {amount}{extra}}}')


def create_opportunity(client, headers, amount: str, extra: str = "") -> dict:
    response = send(client, "POST", f"{URL}/opportunity", headers,
                    opportunity_body(new_account(client, headers), amount, extra))
    assert response.status_code == 201, response.data
    return body(response)


def get_raw(client, headers, entity: str, record_id: str) -> str:
    response = client.get(f"{URL}/{entity}/{record_id}", headers=headers)
    assert response.status_code == 200, response.data
    return raw(response)


def history(client, headers, record_id: str) -> list[dict]:
    response = client.get(f"{URL}/opportunity/{record_id}/history", headers=headers)
    assert response.status_code == 200, response.data
    return body(response)["data"]


def amount_errors(response, field: str = "amount") -> list[str]:
    """The messages of a 422 that names exactly one field, ``field``."""
    assert response.status_code == 422, (response.status_code, response.data)
    error = body(response)["error"]
    assert error["code"] == "validation" and list(error["fields"]) == [field], error
    return error["fields"][field]


def quoted(text: str) -> str:
    return f'"{text}"'


# A pack extending base with an entity whose amounts have no minimum, other places, float defaults
# and formulas with float literals.
def _field(name, kind, **options):
    return {"name": name, "type": kind, "label": {"en": name.title(), "zh": name}, **options}


LEDGER = {"name": "ledger", "label": {"en": "Ledger", "zh": "账目"}, "fields": [
    _field("title", "text", required=True),
    _field("balance", "currency"),
    _field("rate", "decimal", precision=4),
    _field("whole", "decimal", precision=0, default=0.0),
    _field("fee", "currency", default=13.5),
    _field("tax", "formula", expression="balance * 0.13", result_type="currency"),
    _field("share", "formula", expression="rate * balance", result_type="decimal", precision=4),
    _field("per_third", "formula", expression="balance / 3", result_type="currency"),
    _field("per_zero", "formula", expression="balance / 0", result_type="currency"),
]}


@pytest.fixture(scope="module")
def ledger_runtime(tmp_path_factory):
    pack = tmp_path_factory.mktemp("packs") / "money"
    (pack / "entities").mkdir(parents=True)
    (pack / "pack.json").write_text(json.dumps({"name": "money", "version": "0.1.0", "extends": ["base"],
                                                "label": {"en": "Money", "zh": "金额"}}))
    (pack / "entities" / "ledger.json").write_text(json.dumps(LEDGER))
    return compile_runtime(load_catalog([str(pack)]))


@pytest.fixture
def ledger(ledger_runtime, database):
    """A client and an admin's headers on an installation of base + the ledger entity."""
    from crm_platform.web import create_app
    url, options = database
    inst = Installation(Settings(database_url=url), make_engine(url, **options), ledger_runtime,
                        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    inst.migrate()
    inst.accounts.create_team("Head Office")
    inst.accounts.create_user("admin", "admin-password", "admin", "Head Office")
    app = create_app(installation=inst)
    app.config["TESTING"] = True
    client = app.test_client()
    token = client.post("/api/auth/token", json={"username": "admin", "password": "admin-password"}).json["token"]
    yield SimpleNamespace(client=client, admin={"Authorization": f"Bearer {token}"}, inst=inst)
    inst.db.dispose()


def ledger_post(ledger, fields: str):
    return send(ledger.client, "POST", f"{URL}/ledger", ledger.admin, f'{{"title": "L"{fields}}}')


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", EXACT)
@pytest.mark.parametrize("as_json", [quoted, str], ids=["string", "number"])
def test_amount_reads_back_exactly_through_create_get_list_and_history(client, admin, text, as_json):
    created = create_opportunity(client, admin, as_json(text))
    assert str(created["amount"]) == text
    assert f'"amount":{text},' in get_raw(client, admin, "opportunity", created["id"])
    listed = client.get(f"{URL}/opportunity?filter[amount][eq]={quote(text)}", headers=admin)
    assert [(r["id"], str(r["amount"])) for r in body(listed)["data"]] == [(created["id"], text)]
    [entry] = history(client, admin, created["id"])
    assert [(c["old"], str(c["new"])) for c in entry["changes"] if c["field"] == "amount"] == [(None, text)]


@pytest.mark.parametrize("as_json", [quoted, str], ids=["string", "number"])
def test_patch_and_its_history_keep_every_digit(client, admin, as_json):
    created = create_opportunity(client, admin, '"0.10"')
    new = "12345678901234.56"
    response = send(client, "PATCH", f"{URL}/opportunity/{created['id']}", admin,
                    f'{{"version": {created["version"]}, "amount": {as_json(new)}}}')
    assert response.status_code == 200, response.data
    assert f'"amount":{new},' in raw(response)
    assert f'"amount":{new},' in get_raw(client, admin, "opportunity", created["id"])
    update = history(client, admin, created["id"])[-1]
    assert [(c["field"], str(c["old"]), str(c["new"])) for c in update["changes"]] == [("amount", "0.10", new)]


@pytest.mark.parametrize("sent, shown", [("1.5", "1.50"), ('"7"', "7.00"), ("7", "7.00"), ("1.100", "1.10"),
                                         ('"-0.00"', "0.00"), ("2E+3", "2000.00"), ('" 3.5 "', "3.50")])
def test_amounts_read_back_at_the_fields_places(client, admin, sent, shown):
    """Every amount is shown with its field's places (2 here), the same on SQLite and PostgreSQL."""
    record = create_opportunity(client, admin, sent)
    assert f'"amount":{shown},' in get_raw(client, admin, "opportunity", record["id"])


@pytest.mark.parametrize("field, value", [("balance", LARGEST), ("balance", f"-{LARGEST}"), ("balance", "-0.01"),
                                          ("rate", "9999999999999999.9999"), ("rate", "-0.0001"),
                                          ("whole", "99999999999999999999"), ("whole", "-99999999999999999999")])
def test_largest_and_smallest_values_inside_the_column_round_trip(ledger, field, value):
    response = ledger_post(ledger, f', "{field}": {value}')
    assert response.status_code == 201, response.data
    assert f'"{field}":{value},' in raw(response)
    assert f'"{field}":{value},' in get_raw(ledger.client, ledger.admin, "ledger", body(response)["id"])


def test_float_defaults_of_a_definition_are_exact_amounts(ledger):
    response = ledger_post(ledger, "")
    assert response.status_code == 201, response.data
    assert '"whole":0,"fee":13.50,' in raw(response)


# -- what is refused ------------------------------------------------------------------------------
@pytest.mark.parametrize("field, sent, digits", [
    ("balance", "1000000000000000000", 18), ("balance", '"1000000000000000000.00"', 18),
    ("balance", "-1000000000000000000", 18), ("balance", "1E+18", 18), ("balance", "1e999999", 18),
    ("balance", '"1e999999"', 18), ("balance", "-1e999999", 18), ("balance", "1" + "0" * 4000, 18), ("balance", "1" + "0" * 5000, 18),
    ("rate", "10000000000000000", 16), ("whole", "100000000000000000000", 20)])
def test_one_digit_more_than_the_column_holds_is_too_large(ledger, field, sent, digits):
    response = ledger_post(ledger, f', "{field}": {sent}')
    assert amount_errors(response, field) == [f"Too large: at most {digits} digits before the decimal point."]


@pytest.mark.parametrize("sent", ["12.345", '"12.345"', "0.001", '"1e-3"', "1E-999999", "1.0000000000000000000001"])
def test_more_places_than_the_field_has_is_a_precision_error(client, admin, sent):
    response = send(client, "POST", f"{URL}/opportunity", admin, opportunity_body(new_account(client, admin), sent))
    assert amount_errors(response) == [PRECISION]


@pytest.mark.parametrize("field, sent, places", [("rate", "1.00001", 4), ("whole", "0.5", 0), ("whole", '"1e-1"', 0)])
def test_places_follow_the_fields_precision(ledger, field, sent, places):
    assert amount_errors(ledger_post(ledger, f', "{field}": {sent}'), field) == [f"At most {places} decimal places."]


@pytest.mark.parametrize("sent", ['"NaN"', '"Infinity"', '"-Infinity"', '"nan"', "true", "false", "[1]", '{"a": 1}',
                                  '"12abc"', '"1_000"', '""', '"١٢"'])
def test_values_that_are_not_numbers_are_422_on_the_field(client, admin, sent):
    response = send(client, "POST", f"{URL}/opportunity", admin, opportunity_body(new_account(client, admin), sent))
    assert amount_errors(response) == [NOT_A_NUMBER]


def test_a_negative_amount_is_below_the_fields_minimum(client, admin):
    response = send(client, "POST", f"{URL}/opportunity", admin, opportunity_body(new_account(client, admin), "-0.01"))
    assert amount_errors(response) == ["Must be at least 0."]


# -- lists ------------------------------------------------------------------------------------------
@pytest.fixture
def ladder(client, admin) -> dict[str, str]:
    """Opportunities whose amounts differ only in the 16th and 17th significant digits (a float
    cannot tell them apart), plus small and zero ones. Returns amount → id."""
    amounts = ["12345678901234.55", "12345678901234.56", "12345678901234.57", "0.00", "0.01", "9.99", "10.00"]
    return {a: create_opportunity(client, admin, a)["id"] for a in amounts}


def amounts_of(client, headers, query: str) -> list[str]:
    response = client.get(f"{URL}/opportunity?limit=200&{query}", headers=headers)
    assert response.status_code == 200, response.data
    return [str(r["amount"]) for r in body(response)["data"]]


@pytest.mark.parametrize("op, value, expected", [
    ("eq", "12345678901234.56", ["12345678901234.56"]),
    ("gt", "12345678901234.56", ["12345678901234.57"]),
    ("lt", "12345678901234.56", ["0.00", "0.01", "9.99", "10.00", "12345678901234.55"]),
    ("gte", "12345678901234.56", ["12345678901234.56", "12345678901234.57"]),
    ("lte", "9.99", ["0.00", "0.01", "9.99"]),
    ("ne", "0", ["0.01", "9.99", "10.00", "12345678901234.55", "12345678901234.56", "12345678901234.57"]),
    ("gt", "9.9", ["9.99", "10.00", "12345678901234.55", "12345678901234.56", "12345678901234.57"]),
    ("in", "0.01,10,12345678901234.57", ["0.01", "10.00", "12345678901234.57"]),
])
def test_filters_on_an_exact_amount_select_exactly_the_right_rows(client, admin, ladder, op, value, expected):
    assert amounts_of(client, admin, f"filter[amount][{op}]={quote(value)}&sort=amount") == expected


def test_sorting_by_amount_is_numeric_both_ways_and_across_cursor_pages(client, admin, ladder):
    ascending = ["0.00", "0.01", "9.99", "10.00", "12345678901234.55", "12345678901234.56", "12345678901234.57"]
    assert amounts_of(client, admin, "sort=amount") == ascending
    assert amounts_of(client, admin, "sort=-amount") == ascending[::-1]
    seen, cursor = [], None
    while True:
        query = "sort=amount&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = body(client.get(f"{URL}/opportunity?{query}", headers=admin))
        seen += [str(r["amount"]) for r in page["data"]]
        cursor = page["paging"]["next_cursor"]
        if not cursor:
            break
    assert seen == ascending


def test_a_filter_value_must_be_an_amount_the_field_can_hold(client, admin, ladder):
    response = client.get(f"{URL}/opportunity?filter[amount][gt]=1.005", headers=admin)
    assert response.status_code == 400 and body(response)["error"]["code"] == "malformed"


# -- formulas -----------------------------------------------------------------------------------------
def test_weighted_amount_and_margin_are_exact(client, admin):
    record = create_opportunity(client, admin, '"12345678901234.56"', ', "probability": 33.33, "cost": "0.01"')
    text = get_raw(client, admin, "opportunity", record["id"])
    # 12345678901234.56 × 33.33 / 100 = 4114814777781.478848 (a float gives 4114814777781.4785)
    assert '"weighted_amount":4114814777781.478848,' in text
    assert '"margin":12345678901234.55' in text


def test_a_formula_result_is_shown_at_its_places_when_that_loses_nothing(client, admin):
    record = create_opportunity(client, admin, "1250000.50", ', "probability": 40')
    assert '"weighted_amount":500000.20,' in get_raw(client, admin, "opportunity", record["id"])


def test_a_float_literal_in_a_formula_is_exact_and_division_by_zero_is_null(ledger):
    response = ledger_post(ledger, ', "balance": "12345678901234.56", "rate": "0.3333"')
    assert response.status_code == 201, response.data
    text = get_raw(ledger.client, ledger.admin, "ledger", body(response)["id"])
    # balance × 0.13 = 1604938257160.4928 exactly (a float says 1604938257160.493); rate × balance at its
    # 4 places would lose digits, so it is shown whole; a third of it is exact at the currency's 2 places.
    assert '"tax":1604938257160.4928,' in text
    assert '"share":4114814777781.478848,' in text
    assert '"per_third":4115226300411.52,' in text
    assert '"per_zero":null' in text


def test_amounts_an_older_version_stored_as_real_read_back_and_are_rekeyed(ledger, backend):
    """SQLite only (PostgreSQL has NUMERIC): a REAL written before exact storage reads back by its repr,
    sorts wrongly (SQLite puts numbers before text) until ``rewrite_sqlite_keys`` re-encodes it."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL stores NUMERIC; there is nothing to re-encode")
    for value in ("5.00", "20.00"):
        assert ledger_post(ledger, f', "balance": {value}').status_code == 201
    legacy = body(ledger_post(ledger, ""))["id"]
    table = ledger.inst.runtime.entity("ledger").table
    with ledger.inst.db.begin() as conn:
        conn.exec_driver_sql(f'UPDATE "{table.name}" SET balance = 12.5 WHERE id = ?', (legacy,))
    assert '"balance":12.50,' in get_raw(ledger.client, ledger.admin, "ledger", legacy)

    def balances():
        response = ledger.client.get(f"{URL}/ledger?sort=balance", headers=ledger.admin)
        return [str(r["balance"]) for r in body(response)["data"]]
    assert balances() == ["12.50", "5.00", "20.00"]
    with ledger.inst.db.begin() as conn:
        assert rewrite_sqlite_keys(conn, table) == 1
        assert rewrite_sqlite_keys(conn, table) == 0
    assert balances() == ["5.00", "12.50", "20.00"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_bare_nan_and_infinity_are_not_json(client, admin, token):
    response = send(client, "POST", f"{URL}/opportunity", admin, opportunity_body(new_account(client, admin), token))
    assert response.status_code == 400 and body(response)["error"]["code"] == "malformed"


def test_negative_amounts_sort_and_filter_in_numeric_order(ledger):
    values = ["-999999999999999999.99", "-1234.56", "-1234.55", "-0.01", "0.00", "0.01", "1234.56", LARGEST]
    for value in reversed(values):
        assert ledger_post(ledger, f', "balance": "{value}"').status_code == 201

    def balances(query: str) -> list[str]:
        response = ledger.client.get(f"{URL}/ledger?limit=200&{query}", headers=ledger.admin)
        assert response.status_code == 200, response.data
        return [str(r["balance"]) for r in body(response)["data"]]
    assert balances("sort=balance") == values
    assert balances("sort=-balance") == values[::-1]
    assert balances("sort=balance&filter[balance][lt]=-1234.55") == values[:2]
    assert balances("sort=balance&filter[balance][gte]=-0.01&filter[balance][lte]=0.01") == ["-0.01", "0.00", "0.01"]


def test_a_filter_value_may_lie_outside_the_fields_min_and_max(client, admin, ladder):
    """amount has min 0; a filter below it is a valid question, answered exactly."""
    assert amounts_of(client, admin, "filter[amount][gt]=-1&filter[amount][lt]=0.01&sort=amount") == ["0.00"]
