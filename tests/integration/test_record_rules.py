"""RecordService rules on SQLite and PostgreSQL: defaults, formulas, stages, conditional rules, duplicates,
references, autonumbers, delete protection, audit, optimistic locking, lists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles

from crm_platform.engine import (BadRequest, Conflict, Duplicate, Filter, Forbidden, ListQuery, NotFound,
                                 RecordInvalid, RecordService, StaleVersion, compile_runtime, make_engine, new_id)
from crm_platform.engine.errors import FieldsForbidden
from crm_platform.engine.hooks import NoHooks
from crm_platform.engine.validation import IMPORT
from crm_platform.installation import Installation, Settings
from crm_platform.metadata import load_catalog

RULES_PACK = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "record_rules"


@pytest.fixture(scope="module")
def rules_runtime():
    """Base plus computed defaults and a conditional read-only field (see the fixture pack)."""
    return compile_runtime(load_catalog([str(RULES_PACK)]))


@pytest.fixture
def installation(rules_runtime, database):
    """Overrides conftest's: a fresh database (file or PostgreSQL schema) migrated for ``rules_runtime``."""
    url, options = database
    inst = Installation(Settings(database_url=url), make_engine(url, **options), rules_runtime,
                        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    inst.migrate()
    yield inst
    inst.db.dispose()


@pytest.fixture
def rep(installation, org):
    return installation.records(org["rep"])


@pytest.fixture
def admin(installation, org):
    """For what reps may not do (delete, assign, edit a converted lead)."""
    return installation.records(org["admin"])


def invalid(action) -> dict[str, list[str]]:
    with pytest.raises(RecordInvalid) as info:
        action()
    return {name: [m.key for m in messages] for name, messages in info.value.fields.items()}


def forbidden_fields(action) -> list[str]:
    """The fields a refused write names (a 403: the caller may not write them)."""
    with pytest.raises(FieldsForbidden) as info:
        action()
    return sorted(info.value.fields)


def account(svc, name="Acme"):
    return svc.create("account", {"name": name})


def opportunity(svc, **extra):
    acct = extra.pop("account", None) or account(svc, f"Acct {new_id()[-8:]}")["id"]
    return svc.create("opportunity", {"name": "Deal", "account": acct, "expected_close_date": "2026-06-30", **extra})


def rows(installation, table: str, **where) -> list[dict]:
    t = installation.runtime.metadata.tables[table]
    with installation.db.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).where(*(t.c[k] == v for k, v in where.items()))).mappings()]


# --- defaults and formulas ----------------------------------------------------------------------------

def test_literal_defaults_fill_only_unsent_fields(rep):
    activity = rep.create("activity", {"subject": "Call Li", "priority": "high"})
    assert (activity["type"], activity["status"], activity["priority"], activity["effective"]) == \
        ("call", "planned", "high", False)
    deal = opportunity(rep)
    assert deal["probability"] == 10 and deal["opportunity_type"] == "new_business"


def test_default_expressions_are_computed_at_create_from_the_record(rep):
    activity = rep.create("activity", {"subject": "Call Li"})
    assert activity["planned_on"] == datetime.now(UTC).date().isoformat()
    assert activity["summary"] == "Call Li / call"
    sent = rep.create("activity", {"subject": "Visit", "type": "visit", "summary": "mine", "planned_on": "2026-01-02"})
    assert (sent["summary"], sent["planned_on"]) == ("mine", "2026-01-02")
    updated = rep.update("activity", activity["id"], {"subject": "Call Li again"}, activity["version"])
    assert updated["summary"] == "Call Li / call"


def test_formula_is_computed_on_read_and_never_stored(installation, rep):
    deal = opportunity(rep, amount=50000, probability=30)
    assert deal["weighted_amount"] == 15000
    columns = {c["name"] for c in sa.inspect(installation.db).get_columns("opportunity")}
    assert "weighted_amount" not in columns and "margin" not in columns and "amount" in columns
    moved = rep.update("opportunity", deal["id"], {"probability": 50}, 1)
    assert moved["weighted_amount"] == 25000
    assert rep.get("opportunity", deal["id"])["weighted_amount"] == 25000
    assert forbidden_fields(lambda: rep.update("opportunity", deal["id"], {"weighted_amount": 1}, 2)) == \
        ["weighted_amount"]
    assert [c["field"] for e in rep.history("opportunity", deal["id"]) for c in e["changes"]
            if c["field"] == "weighted_amount"] == []


# --- stages and conditional rules ---------------------------------------------------------------------

def test_stage_gates_require_fields_and_conditions_to_enter_a_stage(rep):
    deal = opportunity(rep)
    assert invalid(lambda: rep.update("opportunity", deal["id"], {"stage": "proposal"}, 1)) == \
        {"amount": ["gate_required"]}
    assert invalid(lambda: opportunity(rep, stage="proposal")) == {"stage": ["stage_entry"]}
    moved = rep.update("opportunity", deal["id"], {"stage": "proposal", "amount": 9000}, 1)
    assert (moved["stage"], moved["version"]) == ("proposal", 2)
    base = {"name": "Deal", "account": account(rep)["id"], "amount": 100, "stage": "active",
            "signed_on": "2026-01-01", "start_date": "2026-02-01"}
    with pytest.raises(RecordInvalid) as info:  # the validation rule's own message, in the user's language
        rep.create("contract", {**base, "end_date": "2026-01-15"})
    [message] = info.value.fields["end_date"]
    assert list(info.value.fields) == ["end_date"] and message.key == "custom"
    assert message.render("zh") == "到期日期不能早于生效日期。"
    assert invalid(lambda: rep.create("contract", {**base, "signed_on": None})) == {"signed_on": ["gate_required"]}
    assert rep.create("contract", {**base, "end_date": "2027-01-31"})["stage"] == "active"


def test_stage_transitions_are_enforced(rep, admin):
    lead = rep.create("lead", {"name": "Li"})
    assert lead["stage"] == "new"
    lead = rep.update("lead", lead["id"], {"stage": "invalid", "invalid_reason": "Wrong number"}, 1)
    for target in ("new", "following_up", "assigned"):  # an invalid lead may only be paused
        assert invalid(lambda: admin.update("lead", lead["id"], {"stage": target}, 2)) == {"stage": ["transition"]}
    assert invalid(lambda: admin.update("lead", lead["id"], {"stage": "nowhere"}, 2)) == {"stage": ["stage"]}
    assert admin.update("lead", lead["id"], {"stage": "paused"}, 2)["stage"] == "paused"


def test_required_if_applies_when_its_condition_holds(rep):
    lead = rep.create("lead", {"name": "Li"})
    assert invalid(lambda: rep.update("lead", lead["id"], {"stage": "invalid"}, 1)) == {"invalid_reason": ["required"]}
    lead = rep.update("lead", lead["id"], {"stage": "invalid", "invalid_reason": "Wrong number"}, 1)
    assert invalid(lambda: rep.update("lead", lead["id"], {"invalid_reason": ""}, 2)) == \
        {"invalid_reason": ["required"]}
    assert invalid(lambda: rep.update("lead", lead["id"], {"stage": "new"}, 2)) == {"stage": ["transition"]}


def test_readonly_if_is_judged_on_the_stored_record(rep):
    activity = rep.create("activity", {"subject": "Visit", "outcome": "planned", "status": "planned"})
    done = rep.update("activity", activity["id"], {"status": "done", "outcome": "signed"}, 1)
    assert done["outcome"] == "signed"
    assert invalid(lambda: rep.update("activity", activity["id"], {"outcome": "changed"}, 2)) == \
        {"outcome": ["readonly"]}
    assert rep.update("activity", activity["id"], {"outcome": "signed", "subject": "Visit HQ"}, 2)["version"] == 3


def test_dependent_choices_must_fit_the_parent(rep):
    assert invalid(lambda: rep.create("lead", {"name": "Li", "region": "north_china", "city": "shanghai"})) == \
        {"city": ["dependent_choice"]}
    lead = rep.create("lead", {"name": "Li", "region": "east_china", "city": "shanghai"})
    assert invalid(lambda: rep.update("lead", lead["id"], {"region": "north_china"}, 1)) == \
        {"city": ["dependent_choice"]}
    assert rep.update("lead", lead["id"], {"region": "north_china", "city": "other_city"}, 1)["city"] == "other_city"


def test_every_invalid_field_is_reported_at_once(rep):
    errors = invalid(lambda: rep.create("opportunity", {"amount": "lots", "probability": 120, "source": "tv",
                                                        "account": new_id()}))
    assert errors == {"amount": ["type"], "probability": ["max"], "source": ["choice"], "name": ["required"],
                      "expected_close_date": ["required"], "account": ["reference"]}


# --- duplicates and references ------------------------------------------------------------------------

def test_unique_field_rejects_a_second_record_naming_the_existing_one(rep):
    first = account(rep, "Fresh Mart")
    with pytest.raises(Duplicate) as info:
        account(rep, "Fresh Mart")
    assert (info.value.code, info.value.existing_id) == ("duplicate", first["id"])
    other = account(rep, "Other Mart")
    with pytest.raises(Duplicate) as info:
        rep.update("account", other["id"], {"name": "Fresh Mart"}, 1)
    assert info.value.existing_id == first["id"]


def test_duplicate_rule_compares_normalised_values(rep):
    first = rep.create("lead", {"name": "Li", "mobile": "+86 138-0013-8000"})
    with pytest.raises(Duplicate) as info:
        rep.create("lead", {"name": "Li again", "mobile": "+8613800138000"})
    assert info.value.existing_id == first["id"]
    assert rep.update("lead", first["id"], {"name": "Li Na"}, 1)["mobile"] == "+8613800138000"


def test_references_must_exist(rep, org):
    assert invalid(lambda: rep.create("contact", {"last_name": "Zhang", "account": new_id()})) == \
        {"account": ["reference"]}
    assert invalid(lambda: rep.create("tender", {"title": "T", "bid_documents_owner": new_id()})) == \
        {"bid_documents_owner": ["reference"]}
    tender = rep.create("tender", {"title": "T", "bid_documents_owner": org["rep2"].id})
    assert tender["bid_documents_owner"] == org["rep2"].id


def test_autonumber_counts_per_month_prefix(installation, org):
    def at(month: int, day: int) -> RecordService:
        moment = datetime(2026, month, day, 12, 0, tzinfo=UTC)
        return RecordService(installation.runtime, installation.db, org["rep"], clock=lambda: moment)
    acct = account(installation.records(org["rep"]))["id"]

    def number(svc):
        return svc.create("contract", {"name": "C", "account": acct, "amount": 1})["contract_no"]
    numbers = [number(at(1, 31)), number(at(1, 31)), number(at(2, 1)), number(at(1, 15)), number(at(2, 2))]
    assert numbers == ["CT-202601-0001", "CT-202601-0002", "CT-202602-0001", "CT-202601-0003", "CT-202602-0002"]
    assert forbidden_fields(lambda: at(3, 1).create("contract", {"name": "C", "account": acct, "amount": 1,
                                                                "contract_no": "CT-1"})) == ["contract_no"]


def test_delete_is_blocked_while_other_records_refer_to_it(rep, admin):
    acct = account(rep)
    contact = rep.create("contact", {"last_name": "Zhang", "account": acct["id"]})
    with pytest.raises(Conflict) as info:
        admin.delete("account", acct["id"])  # reps may not delete accounts or contacts
    assert type(info.value) is Conflict and info.value.code == "conflict"
    assert info.value.message.key == "referenced"  # no count: it would include unseen records
    assert info.value.message.render("en") == "Cannot delete: Contact records refer to it through 'Account'."
    assert info.value.message.render("zh") == "无法删除：有联系人记录通过「所属客户」引用它。"
    assert rep.get("account", acct["id"])["name"] == "Acme"
    admin.delete("contact", contact["id"])
    admin.delete("account", acct["id"])
    with pytest.raises(NotFound):
        rep.get("account", acct["id"])


def test_ownership_team_follows_the_owner_and_only_pooled_records_may_be_unowned(installation, rep, admin, org):
    deal = opportunity(rep)
    assert (deal["owner"], deal["team"]) == (org["rep"].id, org["rep"].team)
    moved = admin.update("opportunity", deal["id"], {"owner": org["rep2"].id}, 1)  # reassigning needs assign
    assert (moved["owner"], moved["team"]) == (org["rep2"].id, org["rep2"].team)
    assert admin.get("opportunity", deal["id"])["team"] == org["rep2"].team
    assert installation.records(org["rep2"]).get("opportunity", deal["id"])["owner"] == org["rep2"].id
    with pytest.raises(NotFound):  # no longer rep's record
        rep.get("opportunity", deal["id"])
    assert invalid(lambda: opportunity(rep, owner=None)) == {"owner": ["required"]}
    pooled = rep.create("lead", {"name": "In the pool", "owner": None})
    assert (pooled["owner"], pooled["team"]) == (None, None)
    installation.accounts.deactivate_user("rep2")
    assert invalid(lambda: rep.create("lead", {"name": "Li", "owner": org["rep2"].id})) == {"owner": ["reference"]}


# --- audit and optimistic locking ---------------------------------------------------------------------

def test_every_change_is_audited(installation, rep, org):
    lead = rep.create("lead", {"name": "Li", "source": "ad"})
    rep.update("lead", lead["id"], {"source": "event", "name": "Li"}, 1)
    history = rep.history("lead", lead["id"])
    assert [(e["action"], e["version"], e["by"]["username"]) for e in history] == [("create", 1, "rep"),
                                                                                   ("update", 2, "rep")]
    assert {"field": "name", "old": None, "new": "Li"} in history[0]["changes"]
    assert history[1]["changes"] == [{"field": "source", "old": "ad", "new": "event"}]
    with pytest.raises(Forbidden):  # reps may not delete leads
        rep.delete("lead", lead["id"])
    installation.records(org["admin"]).delete("lead", lead["id"])
    audited = rows(installation, "crm_audit", record_id=lead["id"])
    assert [r["action"] for r in audited] == ["create", "update", "delete"]


@pytest.mark.parametrize("action", ["create", "update"])
def test_a_failing_write_leaves_neither_row_nor_audit_entry(installation, rep, monkeypatch, action):
    lead = rep.create("lead", {"name": "Li"}) if action == "update" else None
    before = rows(installation, "crm_audit")
    from crm_platform.engine import audit
    real_write = audit.write

    def write_then_fail(*args, **kwargs):
        real_write(*args, **kwargs)
        raise RuntimeError("disk full")
    monkeypatch.setattr(audit, "write", write_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        rep.create("lead", {"name": "Wang"}) if action == "create" else rep.update("lead", lead["id"], {"name": "W"}, 1)
    assert rows(installation, "crm_audit") == before
    assert [r["name"] for r in rows(installation, "lead")] == ([] if action == "create" else ["Li"])
    if lead:
        assert rows(installation, "lead")[0]["version"] == 1


def test_a_blocking_sync_rule_leaves_neither_row_nor_audit_entry(installation, org):
    class Block(NoHooks):
        def before_write(self, event, connection):
            raise Conflict("bad_payload", detail="blocked by rule")
    svc = RecordService(installation.runtime, installation.db, org["rep"], hooks=Block())
    with pytest.raises(Conflict, match="blocked by rule"):
        svc.create("lead", {"name": "Li"})
    assert rows(installation, "lead") == [] and rows(installation, "crm_audit") == []


def test_an_update_that_changes_nothing_keeps_the_version_and_writes_no_audit(rep):
    lead = rep.create("lead", {"name": "Li", "mobile": "13800138000"})
    same = rep.update("lead", lead["id"], {"name": "Li", "mobile": "138 0013 8000"}, 1)
    assert same["version"] == 1 and same == rep.get("lead", lead["id"])
    assert [e["action"] for e in rep.history("lead", lead["id"])] == ["create"]


def test_of_two_writes_from_the_same_version_exactly_one_wins(installation, org):
    lead = installation.records(org["rep"]).create("lead", {"name": "Li"})
    first, second = installation.records(org["rep"]), installation.records(org["manager"])
    assert first.update("lead", lead["id"], {"name": "First"}, 1)["version"] == 2
    with pytest.raises(StaleVersion) as info:
        second.update("lead", lead["id"], {"name": "Second"}, 1)
    assert info.value.code == "stale_version"
    assert first.get("lead", lead["id"])["name"] == "First"
    with pytest.raises(BadRequest) as info:
        second.update("lead", lead["id"], {"name": "Second"}, None)
    assert info.value.message.key == "version_required"
    with pytest.raises(StaleVersion):
        second.delete("lead", lead["id"], version=1)
    second.delete("lead", lead["id"], version=2)
    with pytest.raises(NotFound):
        first.update("lead", lead["id"], {"name": "ghost"}, 2)


def test_a_write_racing_inside_the_transaction_is_rejected_as_stale(installation, org, backend):
    """B commits between A's version check and A's UPDATE: A must fail, not overwrite B. (PostgreSQL
    only: on SQLite a write transaction holds the write lock from its start, so B cannot commit
    inside A — B would wait for A instead.)"""
    if backend != "postgresql":
        pytest.skip("SQLite serialises write transactions (BEGIN IMMEDIATE): this interleaving cannot happen")
    lead = installation.records(org["rep"]).create("lead", {"name": "Li"})
    other = installation.records(org["manager"])

    class RaceOnce(NoHooks):
        raced = False

        def before_write(self, event, connection):
            if not self.raced:
                self.raced = True
                other.update("lead", lead["id"], {"name": "B"}, 1)
    slow = RecordService(installation.runtime, installation.db, org["rep"], hooks=RaceOnce())
    with pytest.raises(StaleVersion):
        slow.update("lead", lead["id"], {"name": "A"}, 1)
    stored = other.get("lead", lead["id"])
    assert (stored["name"], stored["version"]) == ("B", 2)
    assert [e["action"] for e in other.history("lead", lead["id"])] == ["create", "update"]


# --- lists ---------------------------------------------------------------------------------------------

def walk(svc, entity, query: ListQuery) -> list[dict]:
    seen = []
    while True:
        page = svc.list(entity, query)
        seen += page["data"]
        if not page["paging"]["has_more"]:
            return seen
        query.cursor = page["paging"]["next_cursor"]


def test_list_filters_sorts_and_pages_by_cursor_returning_each_record_once(rep):
    names = ["Gao", "Bai", "Fan", "Ai", "Dong", "Cao", "Evans"]
    for i, name in enumerate(names):
        rep.create("lead", {"name": name, "source": "ad" if i % 2 == 0 else "event", "score": i % 3})
    ads = walk(rep, "lead", ListQuery(filters=[Filter("source", "eq", "ad")], sort=["name"], limit=2))
    assert [r["name"] for r in ads] == ["Dong", "Evans", "Fan", "Gao"]
    backwards = walk(rep, "lead", ListQuery(sort=["-name"], limit=3))
    assert [r["name"] for r in backwards] == sorted(names, reverse=True)
    counted = rep.list("lead", ListQuery(filters=[Filter("score", "gte", "1")], limit=1, count=True))
    assert counted["paging"]["total"] == 4 and len(counted["data"]) == 1


@pytest.mark.parametrize("sort", [["score"], ["-score"], ["next_follow_up_at", "name"], ["-created_at"], []])
def test_cursor_pages_cover_nulls_and_equal_timestamps_exactly_once(installation, org, sort):
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    svc = RecordService(installation.runtime, installation.db, org["rep"], clock=lambda: moment)
    scores = [None, 3, None, 1, 3, None, 2, 1]
    made = [svc.create("lead", {"name": f"L{i}", "score": s,
                                "next_follow_up_at": None if s is None else f"2026-02-0{s}T08:00:00+08:00"})["id"]
            for i, s in enumerate(scores)]
    for limit in (1, 3):
        seen = walk(svc, "lead", ListQuery(sort=sort, limit=limit))
        assert sorted(r["id"] for r in seen) == sorted(made), limit
        if sort and sort[0].lstrip("-") == "score":
            present = [r["score"] for r in seen if r["score"] is not None]
            assert present == sorted(present, reverse=sort[0].startswith("-"))
            assert [r["score"] for r in seen][-3:] == [None, None, None]  # NULLs last either way


def test_list_filter_operators(rep):
    rep.create("lead", {"name": "Ai", "source": "ad", "email": "ai@x.com",
                        "next_follow_up_at": "2026-03-01T09:00:00+08:00"})
    rep.create("lead", {"name": "Bai", "source": "event", "next_follow_up_at": "2026-03-02T09:00:00+08:00"})
    rep.create("lead", {"name": "Cao Bai", "source": "referral"})

    def names(*filters, search=None):
        return sorted(r["name"] for r in rep.list("lead", ListQuery(filters=list(filters), search=search))["data"])
    assert names(Filter("source", "in", "ad,event")) == ["Ai", "Bai"]
    assert names(Filter("source", "ne", "ad")) == ["Bai", "Cao Bai"]
    assert names(Filter("email", "isnull", "true")) == ["Bai", "Cao Bai"]
    assert names(Filter("name", "contains", "BAI")) == ["Bai", "Cao Bai"]
    assert names(Filter("name", "startswith", "cao")) == ["Cao Bai"]
    assert names(Filter("next_follow_up_at", "gte", "2026-03-02T01:00:00+00:00")) == ["Bai"]
    assert names(Filter("next_follow_up_at", "lt", "2026-03-02T00:00:00Z")) == ["Ai"]
    assert names(search="bai") == ["Bai", "Cao Bai"]
    for bad in (Filter("score", "gt", "many"), Filter("nickname", "eq", "x"), Filter("score", "near", "1")):
        with pytest.raises(BadRequest) as info:
            names(bad)
        assert info.value.message.key == "bad_filter"
    with pytest.raises(BadRequest) as info:
        rep.list("lead", ListQuery(sort=["nickname"]))
    assert info.value.message.key == "bad_sort"


def test_multiselect_filter_matches_records_containing_the_choice(rep):
    rep.create("account", {"name": "A", "tags": ["vip", "key_account"]})
    rep.create("account", {"name": "B", "tags": ["vip"]})
    rep.create("account", {"name": "C"})
    found = rep.list("account", ListQuery(filters=[Filter("tags", "contains", "key_account")]))["data"]
    assert [r["name"] for r in found] == ["A"]
    found = rep.list("account", ListQuery(filters=[Filter("tags", "contains", "vip")], sort=["name"]))["data"]
    assert [r["name"] for r in found] == ["A", "B"]


def test_boolean_filter_selects_matching_records(rep):
    rep.create("activity", {"subject": "Done well", "effective": True})
    rep.create("activity", {"subject": "Not so", "effective": False})
    found = rep.list("activity", ListQuery(filters=[Filter("effective", "eq", "true")]))["data"]
    assert [r["subject"] for r in found] == ["Done well"]


def test_values_too_large_for_their_columns_are_validation_errors(rep):
    acct = account(rep)["id"]
    assert invalid(lambda: opportunity(rep, account=acct, amount=10 ** 18)) == {"amount": ["too_large"]}
    assert invalid(lambda: rep.create("activity", {"subject": "Long", "duration_minutes": 2 ** 63})) == \
        {"duration_minutes": ["max"]}
    assert opportunity(rep, account=acct, amount=10 ** 18 - 1)["amount"] == 10 ** 18 - 1



# --- where a record may start, and stages only an action may set --------------------------------------

def test_a_record_cannot_be_created_in_a_later_stage(rep):
    with pytest.raises(RecordInvalid) as info:
        opportunity(rep, stage="won", amount=5000)
    assert list(info.value.fields) == ["stage"]
    [message] = info.value.fields["stage"]
    assert message.key == "stage_entry"
    assert message.render("en") == "A new Opportunity cannot start in stage 'Won' (it may start in: Initial contact)."
    assert message.render("zh") == "新建的商机不能直接处于阶段「赢单」（可用的起始阶段：初步接洽）。"
    assert invalid(lambda: rep.create("lead", {"name": "Li", "stage": "following_up"})) == {"stage": ["stage_entry"]}
    assert invalid(lambda: rep.create("tender", {"title": "T", "stage": "won"})) == {"stage": ["stage_entry"]}
    assert rep.create("lead", {"name": "Li", "stage": "new"})["stage"] == "new"  # the initial stage, named


def test_an_entry_stage_may_be_entered_at_create_but_its_gate_applies(rep):
    base = {"name": "Signed on paper", "account": account(rep)["id"], "amount": 100, "stage": "active"}
    assert invalid(lambda: rep.create("contract", base)) == \
        {"signed_on": ["gate_required"], "start_date": ["gate_required"]}
    with pytest.raises(RecordInvalid) as info:
        rep.create("contract", {**base, "signed_on": "2026-01-01"})
    assert [m.render("zh") for m in info.value.fields["start_date"]] == ["进入阶段「执行中」时必填。"]
    contract = rep.create("contract", {**base, "signed_on": "2026-01-01", "start_date": "2026-01-02"})
    assert contract["stage"] == "active"
    assert invalid(lambda: rep.create("contract", {**base, "stage": "completed"})) == {"stage": ["stage_entry"]}


def test_a_stage_only_an_action_may_set_is_refused_to_a_plain_write(rep, admin):
    lead = rep.create("lead", {"name": "Li"})
    for svc in (rep, admin):
        with pytest.raises(RecordInvalid) as info:
            svc.update("lead", lead["id"], {"stage": "converted"}, 1)
        assert list(info.value.fields) == ["stage"]
        [message] = info.value.fields["stage"]
        assert message.key == "stage_action_only"
        assert message.render("en") == "Stage 'Converted' is set by the convert action."
        assert message.render("zh") == "阶段「已转化」只能通过转化操作进入。"
    assert invalid(lambda: rep.create("lead", {"name": "Wang", "stage": "converted"})) == \
        {"stage": ["stage_action_only"]}
    stored = rep.get("lead", lead["id"])
    assert (stored["stage"], stored["version"]) == ("new", 1)


def test_the_named_action_may_set_its_stage_and_the_transitions_still_apply(rules_runtime):
    validator = rules_runtime.entities["lead"].validator
    old = {"stage": "following_up", "name": "Li"}

    def errors_moving(old, action):
        errors = {}
        validator.check({**old, "stage": "converted"}, {"stage": "converted"}, old, None, errors, action=action)
        return {name: [m.key for m in messages] for name, messages in errors.items()}
    assert errors_moving(old, "convert") == {}
    assert errors_moving(old, None) == {"stage": ["stage_action_only"]}
    assert errors_moving(old, "update") == {"stage": ["stage_action_only"]}
    assert errors_moving({**old, "stage": "invalid"}, "convert") == {"stage": ["transition"]}


def test_the_trusted_system_context_loads_records_in_any_stage_but_action_only_ones(installation, org):
    system = installation.records(None)  # demo data, the CLI, imports: action "import"
    acct = system.create("account", {"name": "Acme", "owner": org["rep"].id})["id"]
    won = system.create("opportunity", {"name": "Old deal", "account": acct, "owner": org["rep"].id, "amount": 10,
                                        "expected_close_date": "2025-12-31", "stage": "won"})
    assert won["stage"] == "won"
    assert invalid(lambda: system.create("opportunity", {"name": "Old deal", "account": acct, "owner": org["rep"].id,
                                                         "expected_close_date": "2025-12-31", "stage": "won"})) == \
        {"amount": ["gate_required"]}  # the gate still applies
    assert invalid(lambda: system.create("lead", {"name": "Li", "stage": "converted"})) == \
        {"stage": ["stage_action_only"]}


def test_import_passes_the_entry_check_only(rules_runtime):
    validator = rules_runtime.entities["opportunity"].validator

    def errors_creating(stage, action):
        record = {"stage": stage, "name": "Deal", "amount": None}
        errors = {}
        validator.check(record, {"stage": stage}, None, None, errors, action=action)
        return {name: [m.key for m in messages] for name, messages in errors.items() if name in ("stage", "amount")}
    assert errors_creating("negotiation", None) == {"stage": ["stage_entry"]}
    assert errors_creating("negotiation", IMPORT) == {}
    assert errors_creating("won", IMPORT) == {"amount": ["gate_required"]}
