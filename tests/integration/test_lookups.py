"""Values read across references, over HTTP on SQLite and PostgreSQL (the machinery fixture pack):
lookups (one and two references away), fetched values, formulas over formulas and rollups, and what
a caller who may not see a lookup's source is shown.

A lookup is never stored: each read resolves it from the record it names, so it follows a change of
that record and of the reference; lists resolve it in one query per reference followed, never one
per row (counted here with the engine's ``before_cursor_execute`` event)."""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from records_api import create, patch, read, updated

MACHINERY = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "machinery"
URL = "/api/records"
READ_ONLY = ["You may not change this field."]


@pytest.fixture
def installation(machinery):
    """Overrides conftest's: the machinery fixture pack."""
    return machinery


@pytest.fixture
def system(installation):
    """The trusted system context: sets up what a rep may not (models, records of other owners)."""
    return installation.records(None)


@pytest.fixture
def rep(auth):
    return auth("rep")


@pytest.fixture
def admin(auth):
    return auth("admin")


@pytest.fixture
def excavator(system):
    return system.create("machine_model", {"model_code": "EX200", "name": "Excavator 20t", "category": "excavator",
                                           "list_price": "1000000", "dealer_cost": "800000", "warranty_months": 24})


@pytest.fixture
def loader(system):
    return system.create("machine_model", {"model_code": "LD50", "name": "Wheel loader 5t", "category": "loader",
                                           "list_price": "500000", "dealer_cost": "420000", "warranty_months": 12})


def listed(client, who, entity, query="") -> dict[str, dict]:
    response = client.get(f"{URL}/{entity}?limit=200{query}", headers=who)
    assert response.status_code == 200, response.json
    return {record["id"]: record for record in response.json["data"]}


def pick(record: dict, *names) -> dict:
    """The named values, and None for a name the record leaves out (to tell absent from null, use ``in``)."""
    return {name: record.get(name) for name in names}


def account(client, who, name="Acme Machinery", **fields) -> dict:
    return create(client, who, "account", name=name, **fields)


def opportunity(client, who, account_id, **fields) -> dict:
    return create(client, who, "opportunity", **{"name": "Fleet renewal", "account": account_id,
                                                 "expected_close_date": "2026-06-30", **fields})


@contextmanager
def statements(engine: sa.Engine):
    """The SQL statements the engine runs inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


# -- lookups in every response ------------------------------------------------------------------
def test_an_opportunity_shows_its_accounts_industry_and_region_in_every_response(client, rep):
    acme = account(client, rep, industry="retail", region="east_china")
    deal = opportunity(client, rep, acme["id"])
    lookups = {"account_industry": "retail", "account_region": "east_china"}
    assert pick(deal, *lookups) == lookups
    assert pick(read(client, rep, "opportunity", deal["id"]), *lookups) == lookups
    assert pick(listed(client, rep, "opportunity")[deal["id"]], *lookups) == lookups
    assert pick(updated(client, rep, "opportunity", deal, next_step="Site visit"), *lookups) == lookups


def test_a_quote_line_reads_its_region_two_references_away(client, rep, excavator):
    acme = account(client, rep, industry="real_estate", region="southwest")
    deal = opportunity(client, rep, acme["id"])
    line = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"])
    expected = {"region": "southwest", "model_category": "excavator"}
    assert pick(line, *expected) == expected
    assert pick(read(client, rep, "quote_line", line["id"]), *expected) == expected
    assert pick(listed(client, rep, "quote_line")[line["id"]], *expected) == expected


def test_a_lookup_follows_a_change_of_its_source_record(client, rep, excavator):
    acme = account(client, rep, industry="retail", region="east_china")
    deal = opportunity(client, rep, acme["id"])
    line = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"])
    updated(client, rep, "account", acme, industry="energy", region="northwest")
    assert pick(read(client, rep, "opportunity", deal["id"]), "account_industry", "account_region") == \
        {"account_industry": "energy", "account_region": "northwest"}
    assert listed(client, rep, "opportunity")[deal["id"]]["account_industry"] == "energy"
    assert read(client, rep, "quote_line", line["id"])["region"] == "northwest"
    assert listed(client, rep, "quote_line")[line["id"]]["region"] == "northwest"


def test_a_lookup_follows_a_change_of_the_reference(client, rep, excavator, loader):
    acme = account(client, rep, industry="retail", region="east_china")
    other = account(client, rep, name="Bolt Mining", industry="energy")
    deal = opportunity(client, rep, acme["id"])
    line = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"])
    moved = updated(client, rep, "opportunity", deal, account=other["id"])
    assert pick(moved, "account_industry", "account_region") == {"account_industry": "energy", "account_region": None}
    assert read(client, rep, "quote_line", line["id"])["region"] is None
    assert updated(client, rep, "quote_line", line, machine_model=loader["id"])["model_category"] == "loader"


def test_a_lookup_is_read_only_for_everyone(client, rep, admin):
    deal = opportunity(client, admin, account(client, admin)["id"])
    for who in (rep, admin):
        response = client.post(f"{URL}/opportunity", headers=who, json={
            "name": "Deal", "account": deal["account"], "expected_close_date": "2026-06-30", "account_industry": "retail"})
        assert response.status_code == 403
        assert response.json["error"]["fields"] == {"account_industry": READ_ONLY}
    assert patch(client, admin, "opportunity", deal, account_region="overseas").json["error"]["fields"] == \
        {"account_region": READ_ONLY}

    def described(entity, name):
        fields = client.get(f"/api/meta/entities/{entity}", headers=rep).json["fields"]
        return next(f for f in fields if f["name"] == name)
    industry = described("opportunity", "account_industry")
    assert (industry["type"], industry["readonly"], industry["lookup"]) == ("select", True, "account.industry")
    assert industry["choices"] == described("account", "industry")["choices"]  # taken from the source


# -- hidden from a caller who may not see the source --------------------------------------------
def test_a_lookup_of_a_field_hidden_from_reps_and_the_formula_over_it_are_hidden_everywhere(
        client, rep, admin, excavator):
    """machine_model.dealer_cost is hidden from reps: quote_line.model_cost (its lookup) and margin
    (a formula over it) are absent from every response, the description and the history."""
    deal = opportunity(client, rep, account(client, rep)["id"])
    line = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"], quantity=2)
    changed = updated(client, rep, "quote_line", line, discount=10)
    assert "model_cost" not in line and "margin" not in line
    for shown in (changed, read(client, rep, "quote_line", line["id"]), listed(client, rep, "quote_line")[line["id"]]):
        assert "model_cost" not in shown and "margin" not in shown
        assert shown["line_amount"] == Decimal("1800000.00")
    assert pick(read(client, admin, "quote_line", line["id"]), "model_cost", "margin") == \
        {"model_cost": Decimal("800000.00"), "margin": Decimal("200000.00")}

    def described(who):
        response = client.get("/api/meta/entities/quote_line", headers=who)
        assert response.status_code == 200
        return {f["name"] for f in response.json["fields"]}
    assert {"model_cost", "margin"} & described(rep) == set()
    assert {"model_cost", "margin"} <= described(admin)

    def history_fields(who, entity, record_id):
        response = client.get(f"{URL}/{entity}/{record_id}/history", headers=who)
        assert response.status_code == 200
        return {c["field"] for entry in response.json["data"] for c in entry["changes"]}
    assert history_fields(rep, "quote_line", line["id"]) == history_fields(admin, "quote_line", line["id"]) == \
        {"opportunity", "machine_model", "quantity", "unit_price", "discount",  # computed values are never audited
         "owner", "team"}  # a detail carries its opportunity's owner and team
    updated(client, admin, "machine_model", read(client, admin, "machine_model", excavator["id"]), dealer_cost=790000)
    assert "dealer_cost" in history_fields(admin, "machine_model", excavator["id"])
    assert "dealer_cost" not in history_fields(rep, "machine_model", excavator["id"])


def test_a_lookup_from_a_record_the_caller_may_not_read_is_left_out_of_that_record(
        client, rep, admin, system, org, excavator):
    """The rep's opportunity points at an account only the admin may read (set up by the system):
    the rep sees the opportunity, not what it reads from the account — nor the quote line's region,
    two references away; the admin sees both."""
    secret = system.create("account", {"name": "Secret Holdings", "industry": "finance", "region": "south_china",
                                       "owner": org["admin"].id})
    deal = system.create("opportunity", {"name": "Quiet deal", "account": secret["id"], "amount": 1000,
                                         "expected_close_date": "2026-06-30", "owner": org["rep"].id})
    line = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"])
    renamed = updated(client, rep, "opportunity", deal, name="Quiet deal (renamed)")
    for shown in (read(client, rep, "opportunity", deal["id"]), listed(client, rep, "opportunity")[deal["id"]], renamed):
        assert "account_industry" not in shown and "account_region" not in shown
        assert (shown["account"], shown["weighted_amount"]) == (secret["id"], Decimal("100.00"))
    for shown in (line, read(client, rep, "quote_line", line["id"]), listed(client, rep, "quote_line")[line["id"]]):
        assert "region" not in shown
        assert shown["model_category"] == "excavator"
    assert pick(read(client, admin, "opportunity", deal["id"]), "account_industry", "account_region") == \
        {"account_industry": "finance", "account_region": "south_china"}
    assert read(client, admin, "quote_line", line["id"])["region"] == "south_china"

    mine = account(client, rep, name="Rep's own", industry="retail")
    moved = updated(client, rep, "opportunity", renamed, account=mine["id"])
    assert pick(moved, "account_industry", "account_region") == {"account_industry": "retail", "account_region": None}


# -- lists --------------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", ["opportunity", "quote_line"])
def test_a_list_page_resolves_lookups_with_the_same_statements_for_5_or_40_records(
        installation, client, rep, system, org, excavator, loader, entity):
    """Each opportunity has its own account, each quote line its own opportunity: a query per row would
    grow with the page."""
    models = [excavator, loader]

    def add(count: int) -> None:
        for i in range(count):
            acct = system.create("account", {"name": f"Account {entity} {i} {count}", "industry": "retail",
                                             "region": "east_china", "owner": org["rep"].id})
            deal = system.create("opportunity", {"name": f"Deal {i}", "account": acct["id"], "owner": org["rep"].id,
                                                 "expected_close_date": "2026-06-30"})
            system.create("quote_line", {"opportunity": deal["id"], "machine_model": models[i % 2]["id"]})

    def page() -> tuple[int, dict]:
        with statements(installation.db) as seen:
            data = listed(client, rep, entity)
        return len(seen), data

    add(5)
    page()  # the first request of a token may warm caches; measure the ones after it
    few, data = page()
    add(35)
    many, more = page()
    assert (len(data), len(more)) == (5, 40)
    lookup = "account_industry" if entity == "opportunity" else "region"
    expected = "retail" if entity == "opportunity" else "east_china"
    assert {record[lookup] for record in more.values()} == {expected}
    assert many == few


def test_filtering_or_sorting_by_a_lookup_is_a_clear_400(client, rep):
    acme = account(client, rep, industry="retail")
    opportunity(client, rep, acme["id"])
    cases = [("account_industry=retail", "Unknown query parameter 'account_industry'."),
             ("filter[account_industry]=retail", "Cannot filter on 'account_industry': it is computed when read (a formula or a lookup), so lists cannot filter on it"),
             ("filter[account_region][isnull]=true", "Cannot filter on 'account_region': it is computed when read (a formula or a lookup), so lists cannot filter on it"),
             ("sort=account_industry", "Cannot sort on 'account_industry'.")]
    for query, message in cases:
        response = client.get(f"{URL}/opportunity?{query}", headers=rep)
        assert response.status_code == 400, (query, response.json)
        assert (response.json["error"]["code"], response.json["error"]["message"]) == ("malformed", message)


# -- fetched values -----------------------------------------------------------------------------
def test_unit_price_is_fetched_from_the_models_list_price_unless_sent(client, rep, excavator):
    deal = opportunity(client, rep, account(client, rep)["id"])
    fetched = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"])
    assert fetched["unit_price"] == Decimal("1000000.00")
    own = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"], unit_price=950000)
    assert own["unit_price"] == Decimal("950000.00")
    assert read(client, rep, "quote_line", own["id"])["unit_price"] == Decimal("950000.00")


def test_unit_price_is_fetched_again_only_when_the_model_changes_and_no_price_is_sent(
        client, rep, admin, excavator, loader):
    deal = opportunity(client, rep, account(client, rep)["id"])
    line = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"])
    updated(client, admin, "machine_model", read(client, admin, "machine_model", excavator["id"]), list_price=1100000)
    line = updated(client, rep, "quote_line", line, quantity=3)
    assert line["unit_price"] == Decimal("1000000.00")  # an unrelated update keeps the price quoted
    line = updated(client, rep, "quote_line", line, machine_model=loader["id"])
    assert line["unit_price"] == Decimal("500000.00")
    line = updated(client, rep, "quote_line", line, machine_model=excavator["id"], unit_price=990000)
    assert line["unit_price"] == Decimal("990000.00")
    line = updated(client, rep, "quote_line", line, discount=5)
    assert (line["unit_price"], line["line_amount"]) == (Decimal("990000.00"), Decimal("2821500.00"))


def test_a_units_warranty_is_fetched_from_its_model_and_read_only(client, rep, admin, excavator, loader):
    acme = account(client, rep, industry="manufacturing")
    unit = create(client, rep, "machine_unit", serial_no="SN-001", account=acme["id"], machine_model=excavator["id"])
    assert (unit["warranty_months"], unit["industry"]) == (24, "manufacturing")
    for who in (rep, admin):
        response = client.post(f"{URL}/machine_unit", headers=who, json={
            "serial_no": "SN-002", "account": acme["id"], "machine_model": excavator["id"], "warranty_months": 36})
        assert response.status_code == 403
        assert response.json["error"]["fields"] == {"warranty_months": READ_ONLY}
    assert patch(client, rep, "machine_unit", unit, warranty_months=36).json["error"]["fields"] == \
        {"warranty_months": READ_ONLY}
    moved = updated(client, rep, "machine_unit", unit, machine_model=loader["id"])
    assert moved["warranty_months"] == 12
    assert read(client, rep, "machine_unit", unit["id"])["warranty_months"] == 12


# -- formulas over formulas and rollups ---------------------------------------------------------
def test_formulas_read_formulas_lookups_and_rollups(client, rep, admin, excavator, loader):
    deal = opportunity(client, rep, account(client, rep)["id"], amount=2000000)
    big = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=excavator["id"], quantity=2,
                 discount=10)
    assert big["line_amount"] == Decimal("1800000.00")  # 1,000,000 × 2 × 90%
    assert read(client, admin, "quote_line", big["id"])["margin"] == Decimal("200000.00")  # 1,800,000 − 800,000 × 2
    small = create(client, rep, "quote_line", opportunity=deal["id"], machine_model=loader["id"])
    assert read(client, admin, "quote_line", small["id"])["margin"] == Decimal("80000.00")
    shown = read(client, rep, "opportunity", deal["id"])
    assert pick(shown, "quote_total", "quote_gap", "probability", "weighted_quote") == {
        "quote_total": Decimal("2300000.00"), "quote_gap": Decimal("-300000.00"), "probability": Decimal("10.00"),
        "weighted_quote": Decimal("230000.00")}
    updated(client, rep, "quote_line", big, discount=20)
    moved = updated(client, rep, "opportunity", read(client, rep, "opportunity", deal["id"]), stage="needs_confirmed")
    assert pick(moved, "quote_total", "quote_gap", "weighted_quote") == {
        "quote_total": Decimal("2100000.00"), "quote_gap": Decimal("-100000.00"), "weighted_quote": Decimal("630000.00")}
