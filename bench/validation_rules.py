"""Saving a record that ten validation rules check: the opportunity with and without ten rules.

Engine: ``RecordService.create("opportunity", ...)`` and ``.update(...)`` in a variant of the base pack
whose opportunity has ten ``validation_rules`` (``RULES``: comparisons, blank checks, text and date
functions, formulas, and one path, ``account.credit_limit``), all of them passing, as most saves do.
Floor: the same create and update in the base pack, whose opportunity has no rules; everything else
(validation of the values, defaults, stage and probability, the account's lookups, the account's
rollups, the row, the audit row) is the same work.

Data per installation (not timed): 1,000 accounts with a credit limit (Core), and 200 opportunities
for the updates. Creates cycle through the accounts and updates through the opportunities (each
update changes the amount, so the account's pipeline rollup is recomputed on both sides), so no
account gathers thousands of opportunities. Before timing: both variants answer the same, and the
rules are in force (a record breaking three of them is refused with exactly those fields and messages).
"""

from __future__ import annotations

import itertools
import tempfile
from decimal import Decimal
from pathlib import Path

from crm_platform.engine.errors import RecordInvalid

from .common import Row, bench_actor, compare, pg_schema, profile, profile_calls, row
from .list_page import insert_accounts
from .spanning import base_catalog, base_variant, open_installation


def _rule(name: str, condition: str, field: str) -> dict:
    return {"name": name, "condition": condition, "fields": [field],
            "message": {"en": f"Rule {name} failed.", "zh": f"规则 {name} 未通过。"}}


RULES = [
    _rule("cost_within_amount", "cost <= amount", "cost"),
    _rule("close_within_ten_years", "expected_close_date <= add_days(today(), 3650)", "expected_close_date"),
    _rule("close_after_2020", "year(expected_close_date) >= 2020", "expected_close_date"),
    _rule("won_is_certain", "stage != 'won' or probability == 100", "probability"),
    _rule("lost_has_reason", "stage != 'lost' or not is_blank(lost_reason)", "lost_reason"),
    _rule("descriptive_name", "len(name) >= 3", "name"),
    _rule("short_next_step", "is_blank(next_step) or len(next_step) <= 300", "next_step"),
    _rule("no_test_competitors", "is_blank(competitors) or not contains(lower(competitors), 'test')", "competitors"),
    _rule("positive_margin", "margin >= 0", "amount"),
    _rule("within_credit_limit", "is_blank(account.credit_limit) or amount <= account.credit_limit", "amount"),
]
DATA = {"name": "Cold-chain rollout, phase 2", "amount": Decimal("1250000.5"), "probability": 40,
        "expected_close_date": "2025-09-30", "source": "referral", "next_step": "Send the revised quote",
        "competitors": "Two regional integrators",
        "description": "Three warehouses and 40 refrigerated trucks; telemetry and a customer portal.",
        "cost": Decimal("830000.25")}
#: Breaks cost_within_amount, no_test_competitors and positive_margin (on cost, competitors, amount).
BAD = {**DATA, "cost": Decimal(2000000), "competitors": "Test Corp"}
AMOUNTS = (Decimal("1250000.5"), Decimal(1300000))
CREDIT_LIMIT = Decimal(5000000)
PER_INSTALLATION = frozenset({"id", "created_at", "updated_at", "created_by", "updated_by", "owner", "team", "account"})


def _with_rules(document: dict) -> None:
    document["validation_rules"] = RULES


def _prepare(installation, accounts: int, opportunities: int):
    """Accounts with a credit limit (Core) and opportunities to update; the actor's service, account ids,
    opportunity ids."""
    actor = bench_actor(installation)
    ids = insert_accounts(installation, [(actor.id, actor.team)], accounts)
    table = installation.runtime.entity("account").table
    with installation.db.begin() as conn:
        conn.execute(table.update().values(credit_limit=CREDIT_LIMIT))
    service = installation.records(actor)
    existing = [service.create("opportunity", {**DATA, "account": ids[i % accounts]})["id"] for i in range(opportunities)]
    return service, ids, existing


def _measure(label: str, installations: dict, args) -> list[Row]:
    accounts, opportunities = (100, 40) if args.quick else (1000, 200)
    cases = {}
    checks = {}
    for name, installation in installations.items():
        service, account_ids, existing = _prepare(installation, accounts, opportunities)
        account_cycle = itertools.cycle(account_ids)
        stored = dict.fromkeys(existing, (1, AMOUNTS[0]))  # id → (version, amount)
        updates = itertools.cycle(existing)

        def create(service=service, account_cycle=account_cycle):
            return service.create("opportunity", {**DATA, "account": next(account_cycle)})

        def update(service=service, stored=stored, updates=updates):
            """Each update changes the amount (an unchanged one would write nothing)."""
            record_id = next(updates)
            version, amount = stored[record_id]
            out = service.update("opportunity", record_id, {"amount": AMOUNTS[amount == AMOUNTS[0]]}, version)
            assert out["version"] == version + 1, "the update wrote nothing"
            stored[record_id] = out["version"], out["amount"]
            return out

        cases[f"create_{name}"], cases[f"update_{name}"] = create, update
        checks[name] = (service, account_ids[0])
    _check(cases, checks)
    s = compare(cases, rounds=9 if args.quick else 41, min_sample_ns=10_000_000 if args.quick else 30_000_000)
    note = (f"{label}; engine: opportunity with {len(RULES)} validation rules (all pass; one reads account.credit_limit); "
            "floor: the base pack's opportunity, no rules — the same save otherwise")
    rows = [row(f"validation rules: create, 10 rules vs none [{label}]", s["create_rules"], s["create_none"], 1.2, note,
                engine_label="10 rules", floor_label="no rules"),
            row(f"validation rules: update, 10 rules vs none [{label}]", s["update_rules"], s["update_none"], 1.2, note,
                engine_label="10 rules", floor_label="no rules")]
    if args.profile:
        args.profiles.append(profile(f"validation rules: create with 10 rules [{label}]", cases["create_rules"],
                                     profile_calls(s["create_rules"])))
    return rows


def _check(cases: dict, checks: dict) -> None:
    """Both variants answer the same create and update; the rules refuse a record that breaks three."""
    def shown(record):
        return {k: v for k, v in record.items() if k not in PER_INSTALLATION}

    assert shown(cases["create_rules"]()) == shown(cases["create_none"]())
    assert shown(cases["update_rules"]()) == shown(cases["update_none"]())
    service, account = checks["rules"]
    try:
        service.create("opportunity", {**BAD, "account": account})
        raise AssertionError("a record breaking three rules was accepted")
    except RecordInvalid as exc:
        got = {name: [m.render("en") for m in messages] for name, messages in exc.fields.items()}
    assert got == {"cost": ["Rule cost_within_amount failed."], "competitors": ["Rule no_test_competitors failed."],
                   "amount": ["Rule positive_margin failed."]}, got
    service, account = checks["none"]
    assert service.create("opportunity", {**BAD, "account": account})["cost"] == BAD["cost"]


def _catalogs(folder: Path) -> dict:
    return {"rules": base_variant(folder / "rules", {"opportunity": _with_rules}), "none": base_catalog()}


def run(args) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="crm-bench-rules-") as tmp:
        folder = Path(tmp)
        catalogs = _catalogs(folder)
        installations = {name: open_installation(f"sqlite:///{folder / name}.db", catalog)
                         for name, catalog in catalogs.items()}
        try:
            rows = _measure("sqlite", installations, args)
        finally:
            for installation in installations.values():
                installation.db.dispose()
        if args.pg_url:
            rows += run_postgres(args, catalogs)
    return rows


def run_postgres(args, catalogs: dict) -> list[Row]:
    installations = {name: open_installation(args.pg_url, catalog, pg_schema(args.pg_url, f"bench_rules_{name}"))
                     for name, catalog in catalogs.items()}
    try:
        return _measure("postgresql", installations, args)
    finally:
        for installation in installations.values():
            installation.db.dispose()
