"""What a stage does to a record, over HTTP on SQLite and PostgreSQL (base pack + machinery fixture pack):
the probability field takes the stage's probability on create and on every stage change, unless the
same write sends it; a stage restricted to roles refuses everyone else with a message naming the
roles, in the caller's language."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from records_api import create, invalid, patch, read, updated

from crm_platform.engine import RecordInvalid
from crm_platform.engine.validation import IMPORT

MACHINERY = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "machinery"
URL = "/api/records"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
ONLY_MANAGERS = "Only Sales manager, Administrator may move a record to stage '{stage}'; your role may not."


@pytest.fixture
def installation(machinery):
    """Overrides conftest's: the machinery fixture pack."""
    return machinery


@pytest.fixture
def rep(auth):
    return auth("rep")


@pytest.fixture
def acme(client, rep) -> dict:
    return create(client, rep, "account", name="Acme Machinery")


def forecast(record: dict) -> tuple:
    return record["stage"], record["probability"], record["weighted_amount"]


# -- probability follows the stage --------------------------------------------------------------
def test_probability_and_weighted_amount_follow_the_stage_on_create_and_every_stage_change(client, rep, acme):
    deal = create(client, rep, "opportunity", name="Fleet", account=acme["id"], amount=200000,
                  expected_close_date="2026-06-30")
    assert forecast(deal) == ("initial_contact", Decimal("10.00"), Decimal("20000.00"))
    walk = [("needs_confirmed", "30.00", "60000.00"), ("proposal", "50.00", "100000.00"),
            ("negotiation", "80.00", "160000.00"), ("needs_confirmed", "30.00", "60000.00"),
            ("negotiation", "80.00", "160000.00"), ("won", "100.00", "200000.00")]
    for stage, probability, weighted in walk:
        deal = updated(client, rep, "opportunity", deal, stage=stage)
        assert forecast(deal) == (stage, Decimal(probability), Decimal(weighted))
        assert forecast(read(client, rep, "opportunity", deal["id"])) == forecast(deal)


def test_a_probability_sent_in_the_same_write_wins_over_the_stages(client, rep, acme):
    deal = create(client, rep, "opportunity", name="Fleet", account=acme["id"], amount=200000,
                  expected_close_date="2026-06-30", probability=25)
    assert forecast(deal) == ("initial_contact", Decimal("25.00"), Decimal("50000.00"))
    deal = updated(client, rep, "opportunity", deal, stage="proposal", probability=45)
    assert forecast(deal) == ("proposal", Decimal("45.00"), Decimal("90000.00"))
    deal = updated(client, rep, "opportunity", deal, next_step="Demo", stage="proposal")  # the stage did not change
    assert forecast(deal) == ("proposal", Decimal("45.00"), Decimal("90000.00"))
    deal = updated(client, rep, "opportunity", deal, stage="negotiation")  # the next stage change sets it again
    assert forecast(deal) == ("negotiation", Decimal("80.00"), Decimal("160000.00"))


# -- stages restricted to roles -----------------------------------------------------------------
def test_only_managers_and_admins_may_approve_or_reject_a_finance_application(client, rep, auth, acme):
    application = create(client, rep, "finance_application", account=acme["id"], amount=300000)
    assert (application["stage"], application["approval_chance"]) == ("draft", Decimal("10.00"))
    submitted = updated(client, rep, "finance_application", application, stage="submitted")
    assert (submitted["stage"], submitted["approval_chance"]) == ("submitted", Decimal("40.00"))
    assert invalid(patch(client, rep, "finance_application", submitted, stage="approved")) == \
        {"stage": [ONLY_MANAGERS.format(stage="Approved")]}
    assert invalid(patch(client, rep, "finance_application", submitted, stage="rejected", approval_chance=5)) == \
        {"stage": [ONLY_MANAGERS.format(stage="Rejected")]}
    assert invalid(patch(client, rep, "finance_application", submitted, ZH, stage="approved")) == \
        {"stage": ["只有销售经理、系统管理员可以将记录推进到阶段「已批准」，您的角色无此权限。"]}
    stored = read(client, rep, "finance_application", application["id"])
    assert (stored["stage"], stored["approval_chance"], stored["version"]) == ("submitted", Decimal("40.00"), 2)

    approved = updated(client, auth("manager"), "finance_application", stored, stage="approved")
    assert (approved["stage"], approved["approval_chance"]) == ("approved", Decimal("100.00"))
    other = updated(client, rep, "finance_application",
                    create(client, rep, "finance_application", account=acme["id"], amount=1000), stage="submitted")
    rejected = updated(client, auth("admin"), "finance_application", other, stage="rejected")
    assert (rejected["stage"], rejected["approval_chance"]) == ("rejected", Decimal("0.00"))


def test_a_rep_going_back_to_draft_needs_no_role(client, rep, acme):
    application = create(client, rep, "finance_application", account=acme["id"], amount=300000)
    back = updated(client, rep, "finance_application", updated(client, rep, "finance_application", application,
                                                              stage="submitted"), stage="draft")
    assert (back["stage"], back["approval_chance"]) == ("draft", Decimal("10.00"))


def test_a_finance_application_cannot_be_created_already_approved(client, rep, auth, acme):
    """Over the API the entry rule refuses first, for every role (the pipeline starts at Draft)."""
    for who in (rep, auth("manager")):
        response = client.post(f"{URL}/finance_application", headers=who,
                               json={"account": acme["id"], "amount": 1000, "stage": "approved"})
        assert invalid(response) == {
            "stage": ["A new Finance application cannot start in stage 'Approved' (it may start in: Draft)."]}


def test_an_import_may_start_a_record_in_a_restricted_stage_only_for_the_stages_roles(installation, org, acme):
    """An import loads records in any stage (entry rules do not apply), but a rep's import still may not
    place one in a stage only managers may move a record to."""
    body = {"account": acme["id"], "amount": 1000, "stage": "approved"}
    with pytest.raises(RecordInvalid) as refused:
        installation.records(org["rep"]).create("finance_application", body, action=IMPORT)
    assert {name: [m.render() for m in messages] for name, messages in refused.value.fields.items()} == \
        {"stage": [ONLY_MANAGERS.format(stage="Approved")]}
    imported = installation.records(org["manager"]).create("finance_application", body, action=IMPORT)
    assert (imported["stage"], imported["approval_chance"]) == ("approved", Decimal("100.00"))
