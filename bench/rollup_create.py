"""Creating a child that updates a rollup: a paid payment instalment, with and without the contract's rollups.

Engine: ``RecordService.create("payment", ...)`` of a paid instalment in the base pack with one
rollup over payments — ``contract.paid_amount`` (sum of the paid instalments' ``paid_amount``): the
whole write path, plus, in the same transaction, the contract row locked (``FOR UPDATE``), the
paid instalments of that contract summed, the contract row updated.
Floor: the same create in a variant of the base pack whose contract has no rollups
(``paid_amount``, ``next_due_date`` are plain stored fields nobody maintains): everything else —
the detail's permission check on the contract, its lookups, the row, the audit row — is the same.
Context: the base pack as shipped, with both of its rollups over payments (``paid_amount`` and
``next_due_date``, the earliest unpaid due date): one lock, two aggregates, one update.

Data per installation (not timed): 1,000 contracts (100 with ``--quick``), each with 10
instalments, 4 of them paid, inserted with Core and the rollups rebuilt with the engine's own
``rollups.rebuild``. Creates cycle through the contracts, so each parent has ~10–13 children, as
a contract's payment plan would. SQLite: one file per variant; PostgreSQL: one schema per variant.
Before timing, every variant's answer and stored row are checked equal, and each contract's
rollups right; after timing, ``rebuild`` must find no drift.
"""

from __future__ import annotations

import itertools
import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from .common import Row, bench_actor, compare, pg_schema, profile, profile_calls, row
from .spanning import base_catalog, base_variant, drop_rollups, open_installation

#: variant → its catalog edits: no rollups over payments, one (paid_amount), the base pack's two.
VARIANTS = {"none": {"contract": drop_rollups("paid_amount", "next_due_date")},
            "one": {"contract": drop_rollups("next_due_date")},
            "two": None}
INSTALMENTS, PAID = 10, 4
PAYMENT = {"instalment_no": 11, "due_date": "2025-06-30", "amount": Decimal(12500), "status": "paid",
           "paid_on": "2025-06-28", "paid_amount": Decimal(12500), "invoice_no": "INV-2025-0611"}
#: Differ between installations by construction (ids, times, the contract and what is read from it).
PER_INSTALLATION = frozenset({"id", "created_at", "updated_at", "created_by", "updated_by", "contract", "account",
                              "contract_owner"})


def _say(msg: str) -> None:
    print(f"  [rollup_create] {msg}", flush=True)


def _catalogs(folder: Path) -> dict:
    return {name: base_variant(folder / name, edits) if edits else base_catalog() for name, edits in VARIANTS.items()}


def _prepare(installation, contracts: int) -> list[str]:
    """``contracts`` contracts through the service, their instalments with Core, rollups rebuilt; contract ids."""
    from crm_platform.engine import rollups
    from crm_platform.engine.database import new_id, utcnow
    actor = bench_actor(installation)
    service = installation.records(actor)
    account = service.create("account", {"name": "Bench Rollups Ltd."})["id"]
    ids = [service.create("contract", {"name": f"Maintenance {i:04d}", "account": account, "amount": Decimal(125000),
                                       "start_date": "2025-01-01", "end_date": "2025-12-31"})["id"]
           for i in range(contracts)]
    now, first_due = utcnow(), date(2025, 1, 31)
    rows = [{"id": new_id(), "version": 1, "created_at": now, "updated_at": now, "created_by": actor.id,
             "updated_by": actor.id, "contract": contract, "instalment_no": k, "due_date": first_due + timedelta(days=30 * k),
             "amount": Decimal(12500), "status": "paid" if k < PAID else "planned",
             "paid_on": first_due + timedelta(days=30 * k) if k < PAID else None,
             "paid_amount": Decimal(12500) if k < PAID else None, "invoice_no": None, "reminder_days_before": 3,
             "notes": None} for contract in ids for k in range(INSTALMENTS)]
    runtime = installation.runtime
    with installation.db.begin() as conn:
        conn.execute(runtime.entity("payment").table.insert(), rows)
        rollups.rebuild(runtime, conn, ["contract"])
    return ids


def _drift(installation) -> list[dict]:
    from crm_platform.engine import rollups
    with installation.db.begin() as conn:
        return [r for r in rollups.rebuild(installation.runtime, conn, ["contract"]) if r["corrected"]]


def _measure(label: str, installations: dict, args) -> list[Row]:
    contracts = 100 if args.quick else 1000
    services, cycles = {}, {}
    for name, installation in installations.items():
        ids = _prepare(installation, contracts)
        services[name] = installation.records(bench_actor(installation))
        cycles[name] = itertools.cycle(ids)

    def create(name):
        service, cycle = services[name], cycles[name]
        return lambda: service.create("payment", {**PAYMENT, "contract": next(cycle)})

    cases = {name: create(name) for name in installations}
    # Same answer and the rollups right in every variant: the first contract gets its 11th instalment.
    answers = {}
    for name, case in cases.items():
        answers[name] = case()
        parent = services[name].get("contract", answers[name]["contract"])
        paid = Decimal(12500) * (PAID + 1)  # the loaded paid instalments and the new one
        assert parent["paid_amount"] == (None if name == "none" else paid), (name, parent["paid_amount"])
        # next_due_date is a rollup only in the base pack; the variants leave it as loaded (blank).
        assert parent["next_due_date"] == ("2025-05-31" if name == "two" else None), (name, parent["next_due_date"])
    shown = {name: {k: v for k, v in a.items() if k not in PER_INSTALLATION} for name, a in answers.items()}
    assert shown["one"] == shown["none"] == shown["two"], shown
    assert answers["one"]["contract_owner"] == services["one"].actor.id

    s = compare(cases, rounds=9 if args.quick else 41, min_sample_ns=10_000_000 if args.quick else 30_000_000)
    for name, installation in installations.items():
        assert not _drift(installation), f"{name}: rollups drifted"
    where = f"{label}, {contracts:,} contracts of {INSTALMENTS}+ instalments, creates cycle through them"
    rows = [row(f"rollup: create payment, 1 rollup vs none [{label}]", s["one"], s["none"], 1.3,
                f"{where}; engine: contract.paid_amount (sum of paid instalments) kept in the same transaction "
                "(parent locked, aggregate, parent updated); floor: the same create, the contract without rollups",
                engine_label="1 rollup", floor_label="no rollup"),
            row(f"rollup: create payment, base pack's 2 rollups vs none (context) [{label}]", s["two"], s["none"], None,
                "as shipped: paid_amount and next_due_date (min due date of unpaid instalments), one lock, two "
                "aggregates, one update", engine_label="2 rollups", floor_label="no rollup")]
    if args.profile:
        args.profiles.append(profile(f"rollup create, 1 rollup [{label}]", cases["one"], profile_calls(s["one"])))
    return rows


def run(args) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="crm-bench-rollup-") as tmp:
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
    installations = {name: open_installation(args.pg_url, catalog, pg_schema(args.pg_url, f"bench_rollup_{name}"))
                     for name, catalog in catalogs.items()}
    try:
        return _measure("postgresql", installations, args)
    finally:
        for installation in installations.values():
            installation.db.dispose()
