"""Rollup fields, as a user sees them through the API, on SQLite and PostgreSQL.

The base pack's contract keeps ``paid_amount`` (sum of the paid payments' received amounts) and
``next_due_date`` (earliest due date of the unpaid ones); the account keeps its open and won
pipeline; the machinery fixture pack adds, on the opportunity, rollups over its quote lines: a sum
of a formula (``quote_total``), a count, a filtered sum, a max and an average. Each test checks the
exact values a client reads back after the child write that should move them — and, for ``rebuild``,
what it reports and repairs after the stored values were corrupted behind the service's back.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from crm_platform.cli import main
from crm_platform.engine.rollups import rebuild

MACHINERY = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "machinery"
URL = "/api/records"
THREADS = 20
READ_ONLY = ["You may not change this field."]


@pytest.fixture
def installation(machinery):
    """Overrides conftest's: the machinery fixture pack."""
    return machinery


class Api:
    """One user's calls through the Flask test client; answers parsed with exact decimals (a JSON
    number ``0.30`` reads as ``Decimal('0.30')``, never as a float)."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def create(self, entity: str, **fields) -> dict:
        response = self.client.post(f"{URL}/{entity}", json=fields, headers=self.headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        return exact(response)

    def get(self, entity: str, record_id: str) -> dict:
        response = self.client.get(f"{URL}/{entity}/{record_id}", headers=self.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return exact(response)

    def patch(self, entity: str, record: dict, **fields):
        return self.client.patch(f"{URL}/{entity}/{record['id']}", json={"version": record["version"], **fields},
                                 headers=self.headers)

    def update(self, entity: str, record: dict, **fields) -> dict:
        response = self.patch(entity, record, **fields)
        assert response.status_code == 200, response.get_data(as_text=True)
        return exact(response)

    def delete(self, entity: str, record_id: str) -> None:
        response = self.client.delete(f"{URL}/{entity}/{record_id}", headers=self.headers)
        assert response.status_code == 204, response.get_data(as_text=True)

    def list(self, entity: str, query: str) -> list[dict]:
        response = self.client.get(f"{URL}/{entity}?{query}", headers=self.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return exact(response)["data"]


def exact(response):
    return json.loads(response.get_data(as_text=True), parse_float=Decimal)


@pytest.fixture
def rep(client, auth) -> Api:
    return Api(client, auth("rep"))


@pytest.fixture
def admin(client, auth) -> Api:
    return Api(client, auth("admin"))


def new_contract(api: Api, name: str = "Excavator fleet", amount: str = "1000.00") -> dict:
    account = api.create("account", name=f"{name} Ltd")
    return api.create("contract", name=name, account=account["id"], amount=amount)


def planned(api: Api, contract: dict, instalment: int, due: str, amount: str) -> dict:
    return api.create("payment", contract=contract["id"], instalment_no=instalment, due_date=due, amount=amount)


def paid(api: Api, contract: dict, instalment: int, received: str, due: str = "2026-01-31") -> dict:
    return api.create("payment", contract=contract["id"], instalment_no=instalment, due_date=due, amount=received,
                      status="paid", paid_on=due, paid_amount=received)


def summary(api: Api, contract: dict) -> tuple:
    """What the contract's form shows of its payment plan: received, outstanding, next due date."""
    record = api.get("contract", contract["id"])
    return record["paid_amount"], record["unpaid_amount"], record["next_due_date"]


# -- contract ← payments -------------------------------------------------------------------------------
def test_a_new_contract_has_received_nothing_and_no_due_date(rep):
    contract = new_contract(rep)
    assert (contract["paid_amount"], contract["next_due_date"]) == (Decimal("0.00"), None)
    assert summary(rep, contract) == (Decimal("0.00"), Decimal("1000.00"), None)


def test_only_paid_payments_count_as_received_and_only_unpaid_ones_set_the_next_due_date(rep):
    contract = new_contract(rep)
    paid(rep, contract, 1, "0.10", due="2026-01-31")
    paid(rep, contract, 2, "0.20", due="2026-02-28")
    planned(rep, contract, 3, "2026-04-30", "400.00")
    planned(rep, contract, 4, "2026-03-31", "599.70")
    # 0.1 + 0.2 is 0.30 exactly (as binary floats it would be 0.30000000000000004)
    assert summary(rep, contract) == (Decimal("0.30"), Decimal("999.70"), "2026-03-31")


def test_marking_a_payment_paid_moves_it_from_due_to_received_and_back(rep):
    contract = new_contract(rep)
    march = planned(rep, contract, 1, "2026-03-31", "300.00")
    planned(rep, contract, 2, "2026-04-30", "700.00")
    assert summary(rep, contract) == (Decimal("0.00"), Decimal("1000.00"), "2026-03-31")
    march = rep.update("payment", march, status="paid", paid_on="2026-03-30", paid_amount="300.00")
    assert summary(rep, contract) == (Decimal("300.00"), Decimal("700.00"), "2026-04-30")
    rep.update("payment", march, status="invoiced")
    assert summary(rep, contract) == (Decimal("0.00"), Decimal("1000.00"), "2026-03-31")


def test_changing_the_amount_received_changes_the_sum(rep):
    contract = new_contract(rep)
    first = paid(rep, contract, 1, "300.00")
    paid(rep, contract, 2, "100.00")
    rep.update("payment", first, paid_amount="250.55")
    assert summary(rep, contract)[:2] == (Decimal("350.55"), Decimal("649.45"))


def test_deleting_payments_takes_them_out_down_to_zero_and_no_due_date(rep, admin):
    contract = new_contract(rep)
    received = paid(rep, contract, 1, "300.00")
    due = planned(rep, contract, 2, "2026-05-31", "700.00")
    admin.delete("payment", received["id"])  # reps may not delete payments
    assert summary(rep, contract) == (Decimal("0.00"), Decimal("1000.00"), "2026-05-31")
    admin.delete("payment", due["id"])
    assert summary(rep, contract) == (Decimal("0.00"), Decimal("1000.00"), None)


def test_moving_a_payment_to_another_contract_corrects_both(rep):
    first, second = new_contract(rep, "First"), new_contract(rep, "Second", amount="500.00")
    moving = paid(rep, first, 1, "120.00", due="2026-02-28")
    paid(rep, first, 2, "80.00")
    planned(rep, second, 1, "2026-06-30", "380.00")
    rep.update("payment", moving, contract=second["id"])
    assert summary(rep, first) == (Decimal("80.00"), Decimal("920.00"), None)
    assert summary(rep, second) == (Decimal("120.00"), Decimal("380.00"), "2026-06-30")


def test_sums_stay_exact_beyond_what_a_float_can_hold(rep):
    contract = new_contract(rep, amount="10000000000000000.00")
    paid(rep, contract, 1, "9999999999999999.99")
    paid(rep, contract, 2, "0.01")
    response = rep.client.get(f"{URL}/contract/{contract['id']}", headers=rep.headers)
    assert '"paid_amount":10000000000000000.00' in response.get_data(as_text=True)
    assert exact(response)["unpaid_amount"] == Decimal("0.00")


def test_the_account_pipeline_follows_the_opportunity_stage(rep, admin):
    account = rep.create("account", name="Pipeline Co")
    deal = rep.create("opportunity", name="Fleet", account=account["id"], amount="1000.00",
                      expected_close_date="2026-06-30")
    spares = rep.create("opportunity", name="Spare parts", account=account["id"], amount="25.50",
                        expected_close_date="2026-06-30")

    def pipeline() -> tuple:
        record = rep.get("account", account["id"])
        return record["open_pipeline_amount"], record["won_amount"]

    assert pipeline() == (Decimal("1025.50"), Decimal("0.00"))
    deal = rep.update("opportunity", deal, stage="proposal")
    rep.update("opportunity", deal, stage="won")
    assert pipeline() == (Decimal("25.50"), Decimal("1000.00"))
    admin.delete("opportunity", spares["id"])
    assert pipeline() == (Decimal("0.00"), Decimal("1000.00"))


# -- opportunity ← quote lines (machinery) ------------------------------------------------------------
QUOTE = ("quote_total", "line_count", "excavator_units", "largest_discount", "average_discount", "weighted_quote")


def quote_summary(api: Api, opportunity: dict) -> tuple:
    record = api.get("opportunity", opportunity["id"])
    return tuple(record[name] for name in QUOTE)


@pytest.fixture
def models(admin) -> dict[str, dict]:
    return {"EX": admin.create("machine_model", model_code="EX200", name="Excavator", category="excavator",
                               list_price="100.10"),
            "LD": admin.create("machine_model", model_code="LD50", name="Loader", category="loader",
                               list_price="2500.00")}


def test_an_opportunity_without_quote_lines_sums_to_zero_and_has_no_max_or_average(rep):
    account = rep.create("account", name="Empty Quote Co")
    deal = rep.create("opportunity", name="Fleet", account=account["id"], expected_close_date="2026-06-30")
    assert quote_summary(rep, deal) == (Decimal("0.00"), 0, 0, None, None, Decimal("0.00"))


def test_quote_rollups_follow_every_line_write(rep, models):
    """A sum over a formula (unit price × quantity less discount), a count, a filtered sum, a max and an
    average (of the lines that have a discount: a blank discount is not a zero)."""
    account = rep.create("account", name="Quarry Co")
    deal = rep.create("opportunity", name="Fleet", account=account["id"], expected_close_date="2026-06-30")
    first = rep.create("quote_line", opportunity=deal["id"], machine_model=models["EX"]["id"], quantity=3, discount=10)
    second = rep.create("quote_line", opportunity=deal["id"], machine_model=models["LD"]["id"], discount=5)
    third = rep.create("quote_line", opportunity=deal["id"], machine_model=models["EX"]["id"], quantity=2)
    assert [line["line_amount"] for line in (first, second, third)] == [Decimal("270.27"), Decimal("2375.00"),
                                                                        Decimal("200.20")]
    # weighted_quote = quote_total × 10 % (the initial stage's probability)
    assert quote_summary(rep, deal) == (Decimal("2845.47"), 3, 6, Decimal("10.00"), Decimal("7.50"), Decimal("284.547"))

    rep.update("quote_line", first, discount=0)  # an input of the summed formula
    assert quote_summary(rep, deal) == (Decimal("2875.50"), 3, 6, Decimal("5.00"), Decimal("2.50"), Decimal("287.55"))
    rep.update("quote_line", second, unit_price="2400.00")
    assert quote_summary(rep, deal)[0] == Decimal("2780.50")
    rep.delete("quote_line", third["id"])
    assert quote_summary(rep, deal) == (Decimal("2580.30"), 2, 4, Decimal("5.00"), Decimal("2.50"), Decimal("258.03"))


# -- read-only, filters and sorting ---------------------------------------------------------------------
def test_a_rollup_is_read_only_even_for_an_admin(admin):
    contract = new_contract(admin)
    response = admin.patch("contract", contract, paid_amount="1000.00", name="Renamed")
    assert response.status_code == 403
    assert exact(response)["error"]["fields"] == {"paid_amount": READ_ONLY}
    response = admin.client.post(f"{URL}/contract", json={"name": "X", "account": contract["account"],
                                                          "amount": "5.00", "next_due_date": "2026-01-01"},
                                 headers=admin.headers)
    assert response.status_code == 403
    assert exact(response)["error"]["fields"] == {"next_due_date": READ_ONLY}
    assert admin.get("contract", contract["id"])["name"] == "Excavator fleet"
    described = admin.client.get("/api/meta/entities/contract", headers=admin.headers).json
    fields = {f["name"]: f for f in described["fields"]}
    assert (fields["paid_amount"]["readonly"], fields["amount"]["readonly"]) == (True, False)
    assert fields["paid_amount"]["rollup"] == {"entity": "payment", "via": "contract", "function": "sum",
                                               "field": "paid_amount", "where": "status == 'paid'"}


def test_contracts_can_be_filtered_and_sorted_by_amount_received(rep):
    unpaid = new_contract(rep, "Unpaid")
    partly = new_contract(rep, "Partly paid")
    fully = new_contract(rep, "Fully paid")
    paid(rep, partly, 1, "150.50")
    planned(rep, partly, 2, "2026-09-30", "849.50")
    paid(rep, fully, 1, "1000.00")

    def names(query: str) -> list[str]:
        return [record["name"] for record in rep.list("contract", query)]

    assert names("filter[paid_amount][gte]=150.50&sort=paid_amount") == ["Partly paid", "Fully paid"]
    assert names("filter[paid_amount][gt]=150.50") == ["Fully paid"]
    assert names("filter[paid_amount]=0") == ["Unpaid"]
    assert names("sort=-paid_amount") == ["Fully paid", "Partly paid", "Unpaid"]
    assert names("filter[next_due_date][isnull]=false") == ["Partly paid"]
    assert unpaid["paid_amount"] == Decimal("0.00")


# -- concurrency ------------------------------------------------------------------------------------------
def race(app, request) -> list[tuple[int, str]]:
    """``request(client, i)`` from THREADS threads (each its own test client, so on PostgreSQL each its
    own connection), released together by a barrier; returns (status, body text) per thread."""
    clients = [app.test_client() for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS, timeout=60)

    def run(i: int):
        barrier.wait()
        response = request(clients[i], i)
        return response.status_code, response.get_data(as_text=True)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def test_twenty_payments_saved_at_once_all_count(app, rep):
    contract = new_contract(rep, amount="100.00")
    answers = race(app, lambda client, i: client.post(f"{URL}/payment", headers=rep.headers, json={
        "contract": contract["id"], "instalment_no": i + 1, "due_date": "2026-01-31", "amount": f"{i + 1}.01",
        "status": "paid", "paid_on": "2026-01-31", "paid_amount": f"{i + 1}.01"}))
    assert [status for status, _ in answers] == [201] * THREADS, answers[:3]
    # 1.01 + 2.01 + ... + 20.01 = 210 + 0.20
    assert summary(rep, contract)[:2] == (Decimal("210.20"), Decimal("-110.20"))


def test_payments_moved_both_ways_at_once_neither_deadlock_nor_lose_counts(app, rep):
    east, west = new_contract(rep, "East"), new_contract(rep, "West")
    from_east = [paid(rep, east, i + 1, f"{i + 1}.00") for i in range(THREADS // 2)]
    from_west = [paid(rep, west, i + 1, f"{(i + 1) * 100}.00") for i in range(THREADS // 2)]
    assert (summary(rep, east)[0], summary(rep, west)[0]) == (Decimal("55.00"), Decimal("5500.00"))
    moves = [(payment, west) for payment in from_east] + [(payment, east) for payment in from_west]
    answers = race(app, lambda client, i: client.patch(
        f"{URL}/payment/{moves[i][0]['id']}", headers=rep.headers,
        json={"version": moves[i][0]["version"], "contract": moves[i][1]["id"]}))
    assert [status for status, _ in answers] == [200] * THREADS, answers[:3]
    assert (summary(rep, east)[0], summary(rep, west)[0]) == (Decimal("5500.00"), Decimal("55.00"))


# -- rebuild ----------------------------------------------------------------------------------------------
@pytest.fixture
def drifted(installation, rep, models) -> dict[str, dict]:
    """Two contracts and two opportunities with their children, then stored rollups of one of each
    overwritten behind the record service's back."""
    right, wrong = new_contract(rep, "Right"), new_contract(rep, "Wrong")
    for contract in (right, wrong):
        paid(rep, contract, 1, "250.00")
        planned(rep, contract, 2, "2026-08-31", "750.00")
    account = rep.create("account", name="Quote Co")
    deals = [rep.create("opportunity", name=name, account=account["id"], expected_close_date="2026-06-30")
             for name in ("Right deal", "Wrong deal")]
    for deal in deals:
        rep.create("quote_line", opportunity=deal["id"], machine_model=models["LD"]["id"], quantity=2, discount=5)
    runtime = installation.runtime
    contracts, opportunities = runtime.entity("contract").table, runtime.entity("opportunity").table
    with installation.db.begin() as conn:
        conn.execute(contracts.update().where(contracts.c.id == wrong["id"])
                     .values(paid_amount=Decimal("999.99"), next_due_date=None))
        conn.execute(opportunities.update().where(opportunities.c.id == deals[1]["id"])
                     .values(quote_total=Decimal("1.00"), line_count=7))
    assert summary(rep, wrong) == (Decimal("999.99"), Decimal("0.01"), None)
    return {"right": right, "wrong": wrong, "right deal": deals[0], "wrong deal": deals[1]}


def by_field(report: list[dict]) -> dict[tuple[str, str], tuple]:
    return {(row["entity"], row["field"]): (row["parents"], row["corrected"], row["examples"]) for row in report}


def test_rebuild_reports_and_repairs_drift_and_then_finds_none(installation, rep, drifted):
    with installation.db.begin() as conn:
        report = by_field(rebuild(installation.runtime, conn))
    wrong, wrong_deal = drifted["wrong"]["id"], drifted["wrong deal"]["id"]
    assert report == {
        ("account", "open_pipeline_amount"): (3, 0, []), ("account", "won_amount"): (3, 0, []),
        ("contract", "paid_amount"): (2, 1, [wrong]), ("contract", "next_due_date"): (2, 1, [wrong]),
        ("opportunity", "quote_total"): (2, 1, [wrong_deal]), ("opportunity", "line_count"): (2, 1, [wrong_deal]),
        ("opportunity", "excavator_units"): (2, 0, []), ("opportunity", "largest_discount"): (2, 0, []),
        ("opportunity", "average_discount"): (2, 0, [])}
    assert summary(rep, drifted["wrong"]) == summary(rep, drifted["right"]) \
        == (Decimal("250.00"), Decimal("750.00"), "2026-08-31")
    assert quote_summary(rep, drifted["wrong deal"]) == quote_summary(rep, drifted["right deal"]) \
        == (Decimal("4750.00"), 1, 2, Decimal("5.00"), Decimal("5.00"), Decimal("475.00"))
    with installation.db.begin() as conn:
        assert {row["corrected"] for row in rebuild(installation.runtime, conn)} == {0}


def test_rebuild_of_one_entity_leaves_the_others_alone(installation, rep, drifted):
    with installation.db.begin() as conn:
        report = by_field(rebuild(installation.runtime, conn, ["contract"]))
    assert report == {("contract", "paid_amount"): (2, 1, [drifted["wrong"]["id"]]),
                      ("contract", "next_due_date"): (2, 1, [drifted["wrong"]["id"]])}
    assert summary(rep, drifted["wrong"])[0] == Decimal("250.00")
    assert quote_summary(rep, drifted["wrong deal"])[:2] == (Decimal("1.00"), 7)


def cli_url(database) -> str:
    """The database URL for the ``crm`` command, with the test's PostgreSQL schema in it."""
    url, options = database
    search_path = options.get("connect_args", {}).get("options")
    return f"{url}?options={quote(search_path)}" if search_path else url


def test_crm_rollups_rebuild_prints_what_it_corrected(database, rep, drifted):
    def crm(*args):
        return CliRunner().invoke(main, ["--packs", str(MACHINERY), "--database", cli_url(database),
                                         "rollups", "rebuild", *args], catch_exceptions=False)

    first = crm("contract")
    assert first.exit_code == 0, first.output
    assert first.output.rstrip().endswith("2 stored value(s) corrected.")
    assert summary(rep, drifted["wrong"])[0] == Decimal("250.00")
    again = crm()
    assert again.exit_code == 0, again.output
    assert again.output.rstrip().endswith("2 stored value(s) corrected.")  # the opportunity's two
    clean = crm()
    assert clean.output.rstrip().endswith("No drift: every stored rollup was right.")
    refused = crm("payment")
    assert refused.exit_code == 1
    assert refused.output.strip() == ("error: 'payment' has no rollup fields; "
                                      "entities with rollups: account, contract, opportunity")
