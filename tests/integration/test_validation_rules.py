"""Entity validation rules over HTTP, on SQLite and PostgreSQL (base pack + machinery fixture pack).

A rule fails when its condition is false — not when it is blank, like a SQL CHECK — and its message
goes on each field it names, in the caller's language, together with every other error of the write.
Rules are invariants of the record: every update checks all of them, also one that does not touch
the fields a rule reads (as Salesforce validation rules run on every save)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from records_api import create, invalid, patch, post, updated

MACHINERY = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "machinery"
URL = "/api/records"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
ENDS_AFTER_START = {"en": "The end date cannot be before the start date.", "zh": "到期日期不能早于生效日期。"}
OVER_LIMIT = {"en": "The contract amount exceeds the account's credit limit.", "zh": "合同金额超出客户信用额度。"}
NEEDS_PRICE = {"en": "A discount needs a unit price.", "zh": "有折扣时必须填写单价。"}


@pytest.fixture
def installation(machinery):
    """Overrides conftest's: the machinery fixture pack."""
    return machinery


@pytest.fixture
def rep(auth):
    return auth("rep")


@pytest.fixture
def admin(auth):
    return auth("admin")


def limited_account(client, rep, admin, credit_limit) -> dict:
    """A rep's account; only the admin may set its credit limit (it is read-only for reps)."""
    acct = create(client, rep, "account", name=f"Account limited to {credit_limit}")
    if credit_limit is not None:
        acct = updated(client, admin, "account", acct, credit_limit=credit_limit)
    return acct


def contract(account_id, **fields) -> dict:
    return {"name": "Supply 2026", "account": account_id, "amount": 50000, **fields}


# -- one rule, one field ------------------------------------------------------------------------
def test_a_contract_ending_before_it_starts_is_422_on_end_date_in_the_callers_language(client, rep):
    acct = create(client, rep, "account", name="Acme")
    body = contract(acct["id"], start_date="2026-05-01", end_date="2026-04-30")
    assert invalid(post(client, rep, "contract", body)) == {"end_date": [ENDS_AFTER_START["en"]]}
    response = post(client, rep, "contract", body, ZH)
    assert invalid(response) == {"end_date": [ENDS_AFTER_START["zh"]]}
    assert response.json["error"]["message"] == "记录包含无效字段。"
    same_day = create(client, rep, "contract", **contract(acct["id"], start_date="2026-05-01", end_date="2026-05-01"))
    open_ended = create(client, rep, "contract", **contract(acct["id"], start_date="2026-05-01"))  # blank passes
    assert (same_day["end_date"], open_ended["end_date"]) == ("2026-05-01", None)
    assert invalid(patch(client, rep, "contract", open_ended, end_date="2026-01-01")) == \
        {"end_date": [ENDS_AFTER_START["en"]]}


def test_a_units_delivery_before_its_manufacture_is_422_on_delivered_on(client, rep, installation):
    model = installation.records(None).create("machine_model", {"model_code": "EX200", "name": "Excavator"})
    acct = create(client, rep, "account", name="Acme")
    body = {"serial_no": "SN-1", "account": acct["id"], "machine_model": model["id"], "manufactured_on": "2026-03-02"}
    assert invalid(post(client, rep, "machine_unit", {**body, "delivered_on": "2026-03-01"})) == \
        {"delivered_on": ["Delivery date must be on or after the manufacture date."]}
    assert invalid(post(client, rep, "machine_unit", {**body, "delivered_on": "2026-03-01"}, ZH)) == \
        {"delivered_on": ["交付日期不得早于出厂日期。"]}
    unit = create(client, rep, "machine_unit", **body)  # not delivered yet: blank passes
    assert updated(client, rep, "machine_unit", unit, delivered_on="2026-03-02")["delivered_on"] == "2026-03-02"


# -- a rule over a lookup -----------------------------------------------------------------------
def test_a_contract_over_its_accounts_credit_limit_is_422_on_amount(client, rep, admin):
    acct = limited_account(client, rep, admin, 100000)
    assert invalid(post(client, rep, "contract", contract(acct["id"], amount="100000.01"))) == \
        {"amount": [OVER_LIMIT["en"]]}
    assert invalid(post(client, rep, "contract", contract(acct["id"], amount=150000), ZH)) == \
        {"amount": [OVER_LIMIT["zh"]]}
    at_limit = create(client, rep, "contract", **contract(acct["id"], amount=100000))
    assert (at_limit["amount"], at_limit["account_credit_limit"]) == (Decimal("100000.00"), Decimal("100000.00"))
    assert invalid(patch(client, rep, "contract", at_limit, amount=100001)) == {"amount": [OVER_LIMIT["en"]]}


def test_an_account_without_a_credit_limit_limits_nothing(client, rep, admin):
    acct = limited_account(client, rep, admin, None)
    big = create(client, rep, "contract", **contract(acct["id"], amount=10 ** 12))
    assert (big["amount"], big["account_credit_limit"]) == (Decimal("1000000000000.00"), None)


def test_a_rule_reads_a_lookup_the_caller_may_not_see(client, rep, installation, org):
    """The rep's contract is on an account only the admin may read (set up by the system): the rep is
    not shown the credit limit, yet the rule reads it and refuses an amount over it."""
    system = installation.records(None)
    secret = system.create("account", {"name": "Secret Holdings", "credit_limit": 80000, "owner": org["admin"].id})
    deal = system.create("contract", {"name": "Quiet supply", "account": secret["id"], "amount": 50000,
                                      "owner": org["rep"].id})
    shown = client.get(f"{URL}/contract/{deal['id']}", headers=rep).json
    assert "account_credit_limit" not in shown
    assert invalid(patch(client, rep, "contract", shown, amount=90000)) == {"amount": [OVER_LIMIT["en"]]}
    assert "account_credit_limit" not in updated(client, rep, "contract", shown, amount=70000)


# -- many errors at once ------------------------------------------------------------------------
def test_every_failing_rule_and_field_error_comes_back_in_one_422(client, rep, admin):
    acct = limited_account(client, rep, admin, 100000)
    body = {"account": acct["id"], "amount": 200000, "start_date": "2026-05-01", "end_date": "2026-04-01",
            "payment_terms": "barter"}
    fields = invalid(post(client, rep, "contract", body))
    assert fields == {"amount": [OVER_LIMIT["en"]], "end_date": [ENDS_AFTER_START["en"]],
                      "name": ["This field is required."],
                      "payment_terms": ["'barter' is not one of the choices: prepaid, net30, net60, installments."]}
    assert client.get(f"{URL}/contract", headers=rep).json["data"] == []


def test_a_rule_naming_two_fields_puts_its_message_on_both(client, rep, installation):
    system = installation.records(None)
    unpriced = system.create("machine_model", {"model_code": "CR-X", "name": "Crane, price on request"})
    priced = system.create("machine_model", {"model_code": "EX200", "name": "Excavator", "list_price": 1000000})
    acct = create(client, rep, "account", name="Acme")
    deal = create(client, rep, "opportunity", name="Cranes", account=acct["id"], expected_close_date="2026-06-30")
    body = {"opportunity": deal["id"], "machine_model": unpriced["id"], "discount": 5}
    assert invalid(post(client, rep, "quote_line", body)) == {"discount": [NEEDS_PRICE["en"]],
                                                            "unit_price": [NEEDS_PRICE["en"]]}
    assert invalid(post(client, rep, "quote_line", body, ZH)) == {"discount": [NEEDS_PRICE["zh"]],
                                                                "unit_price": [NEEDS_PRICE["zh"]]}
    line = create(client, rep, "quote_line", **{**body, "machine_model": priced["id"]})
    assert line["unit_price"] == Decimal("1000000.00")
    # changing the model fetches its (blank) price: the discount no longer has one
    assert invalid(patch(client, rep, "quote_line", line, machine_model=unpriced["id"])) == \
        {"discount": [NEEDS_PRICE["en"]], "unit_price": [NEEDS_PRICE["en"]]}


# -- updates ------------------------------------------------------------------------------------
def test_an_update_checks_every_rule_even_one_whose_fields_it_does_not_touch(client, rep, admin):
    acct = limited_account(client, rep, admin, 100000)
    deal = create(client, rep, "contract", **contract(acct["id"], amount=90000))
    updated(client, admin, "account", client.get(f"{URL}/account/{acct['id']}", headers=admin).json,
            credit_limit=80000)
    assert invalid(patch(client, rep, "contract", deal, notes="Delivery in two lots")) == {"amount": [OVER_LIMIT["en"]]}
    assert client.get(f"{URL}/contract/{deal['id']}", headers=rep).json["version"] == 1
    fixed = updated(client, rep, "contract", deal, notes="Delivery in two lots", amount=80000)
    assert (fixed["notes"], fixed["amount"], fixed["version"]) == ("Delivery in two lots", Decimal("80000.00"), 2)


def test_a_rule_on_a_field_hidden_from_the_caller_still_refuses_the_write_without_naming_it(client, rep, admin):
    """Rep cannot see an opportunity's cost; the admin's cost still bounds the amount rep may set.
    The refusal names no hidden field: the rule's message is on the record as a whole."""
    acct = create(client, rep, "account", name="Quarry Co")
    deal = create(client, rep, "opportunity", name="Two loaders", account=acct["id"], amount=900000,
                  expected_close_date="2027-03-31")
    assert "cost" not in deal
    deal = updated(client, admin, "opportunity", deal, cost=700000)
    refused = patch(client, rep, "opportunity", deal, amount=600000)
    assert invalid(refused) == {"_record": ["The estimated cost exceeds the amount."]}
    zh = patch(client, rep, "opportunity", deal, {"Accept-Language": "zh"}, amount=600000)
    assert invalid(zh) == {"_record": ["预计成本超过商机金额。"]}
    assert client.get(f"{URL}/opportunity/{deal['id']}", headers=admin).json["amount"] == Decimal("900000.00")
    assert updated(client, rep, "opportunity", deal, amount=750000)["amount"] == Decimal("750000.00")
