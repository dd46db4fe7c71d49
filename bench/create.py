"""Single-record create of an opportunity: ``RecordService.create`` vs a raw SQLAlchemy Core insert + commit.

Engine: the whole write path for one opportunity sent as JSON values — validation of the values,
defaults, stage and owner, the account reference checked in the database, the account's industry
and region read (the lookups ``account_industry``/``account_region``), the row inserted, the
account's rollups kept (``open_pipeline_amount``, ``won_amount``: the account locked, its
opportunities' amounts summed, the account updated), the audit row inserted, one commit, the record
returned as JSON (formulas computed, lookups filled).
Floor: ``with engine.begin():`` the insert of the same row (same columns, same values, a fresh id and
timestamps per call) and the account's rollup upkeep written by hand (``account_floor.py``: lock on
PostgreSQL, one aggregate, one update) — what storing an opportunity takes in this schema, nothing else.
Context ("by hand"): everything the engine does, hand-written with prepared statements.

Data (not timed): 1,000 accounts (100 with ``--quick``; industry and region set, every tenth blank)
with ~10 opportunities each (list_page's generator and bulk loader), rollups computed by the
engine's ``rollups.rebuild``. Every timed create goes to the next account in turn, so each rollup
sums a real account's ~10–20 opportunities rather than an ever-growing pile on one account. Before
timing: the same stored row, JSON and audit entry, and each create moves the account's open
pipeline by its amount; after timing ``rebuild`` must find no drift (every side kept the rollups right).

SQLite: a file database in WAL mode (synchronous=NORMAL), as ``make_engine`` configures it.
PostgreSQL (when reachable): its own schema in the fresh benchmark database.
"""

from __future__ import annotations

import itertools
import tempfile
from datetime import date, datetime
from decimal import Context, Decimal
from pathlib import Path
from unittest.mock import ANY

import sqlalchemy as sa

from .account_floor import AccountFloor, lookup_columns, lookups_of
from .common import Row, bench_actor, compare, pg_schema, profile, profile_calls, row
from .list_page import generate, insert_accounts, load_opportunities

NOTE = ("both sides insert the row and keep the account's two rollups (lock, aggregate, update); the engine "
        "also validates the values, applies defaults, checks the account reference, reads the account's "
        "industry and region for the lookups, writes the audit row and returns the record as JSON")
PER_ACCOUNT = 10

SOURCES = frozenset({"web_form", "ad", "event", "referral", "partner", "customer_service", "import", "canvassing",
                     "tender", "other"})
AUDIT_SKIP = frozenset({"id", "version", "created_at", "created_by", "updated_at", "updated_by"})

#: As the web layer's JSON parser hands it over: amounts with a fraction are Decimals.
DATA = {
    "name": "Cold-chain rollout, phase 2",
    "amount": Decimal("1250000.5"),
    "probability": 40,
    "expected_close_date": "2025-09-30",
    "source": "referral",
    "next_step": "Send the revised quote",
    "description": "Three warehouses and 40 refrigerated trucks; telemetry and a customer portal.",
    "cost": Decimal("830000.25"),
}
_CENT, _EXACT, _BOUND = Decimal("0.01"), Context(prec=40), 10 ** 18  # currency: NUMERIC(20, 2)
_PERCENT_MAX = Decimal(100)


def _say(msg: str) -> None:
    print(f"  [create] {msg}", flush=True)


def _amount(value, hi=None) -> Decimal:
    """What the engine does to an amount: exact Decimal, finite, within range, at most 2 places."""
    if type(value) is not Decimal and type(value) is not int:
        raise ValueError("type")
    number = Decimal(value)
    if not number.is_finite() or number < 0 or (hi is not None and number > hi) or number >= _BOUND:
        raise ValueError("range")
    exact = number.quantize(_CENT, context=_EXACT)
    if exact != number:
        raise ValueError("precision")
    return exact


def _open(url: str, options: dict):
    from crm_platform.engine import compile_runtime, make_engine
    from crm_platform.installation import Installation, Settings
    from crm_platform.metadata import load_catalog
    installation = Installation(Settings(database_url=url), make_engine(url, **options),
                                compile_runtime(load_catalog("base")))
    installation.migrate()
    return installation


def _prepare(installation, accounts: int) -> list[str]:
    """``accounts`` accounts (industry and region set) with ~10 opportunities each, loaded with Core, and
    their rollups computed by the engine's own ``rollups.rebuild``; the account ids."""
    from crm_platform.engine import rollups
    actor = bench_actor(installation)
    ids = insert_accounts(installation, [(actor.id, actor.team)], accounts, classified=True)
    opportunities = generate(accounts * PER_ACCOUNT, [(actor.id, actor.team)], ids)
    load_opportunities(installation.db, installation.runtime, opportunities, _say)
    with installation.db.begin() as conn:
        rollups.rebuild(installation.runtime, conn, ["account"])
    return ids


def _measure(label: str, installation, args) -> list[Row]:
    from crm_platform.engine import rollups
    from crm_platform.engine.database import new_id, utcnow
    actor = bench_actor(installation)
    service = installation.records(actor)
    ids = _prepare(installation, 100 if args.quick else 1000)
    runtime, db = installation.runtime, installation.db
    table, accounts, audit = runtime.entity("opportunity").table, runtime.entity("account").table, runtime.tables["audit"]
    fixed = {"version": 1, "owner": actor.id, "team": actor.team, "stage": "initial_contact",
             "created_by": actor.id, "updated_by": actor.id, "name": DATA["name"],
             "primary_contact": None, "decision_maker": None, "opportunity_type": "new_business",
             "amount": _amount(DATA["amount"]), "probability": _amount(DATA["probability"], _PERCENT_MAX),
             "expected_close_date": date(2025, 9, 30), "source": DATA["source"], "next_step": DATA["next_step"],
             "competitors": None, "description": DATA["description"], "lost_reason": None, "cost": _amount(DATA["cost"])}
    insert = table.insert()
    account_side = AccountFloor(runtime, db.dialect.name)

    def engine(account):
        return service.create("opportunity", {**DATA, "account": account})

    def floor(account):
        now = utcnow()
        with db.begin() as conn:
            conn.execute(insert, {**fixed, "account": account, "id": new_id(), "created_at": now, "updated_at": now})
            account_side.keep_rollups(conn, account)

    # Context: the same work as the engine, written by hand with prepared (cached) statements: check the
    # values; the account exists (read with what the lookups show); the row; the account's rollups; the audit row.
    account_q = sa.select(*lookup_columns(accounts)).where(accounts.c.id == sa.bindparam("v"))
    audit_insert = audit.insert()

    def by_hand(account):
        d, errors = {**DATA, "account": account}, {}
        name = d["name"].strip() if type(d.get("name")) is str else None
        if not name or len(name) > 200:
            errors["name"] = ["required"]
        amounts = {}
        for key, hi in (("amount", None), ("cost", None), ("probability", _PERCENT_MAX)):
            try:
                amounts[key] = _amount(d.get(key), hi)
            except ValueError:
                errors[key] = ["type"]
        try:
            close = date.fromisoformat(d["expected_close_date"])
        except (KeyError, TypeError, ValueError):
            errors["expected_close_date"] = ["date"]
        if d.get("source") not in SOURCES:
            errors["source"] = ["choice"]
        next_step = d["next_step"].strip() if type(d.get("next_step")) is str else None
        if next_step is not None and len(next_step) > 500:
            errors["next_step"] = ["max_length"]
        if type(d.get("description")) is not str or len(d["description"]) > 5000:
            errors["description"] = ["max_length"]
        now, record_id = utcnow(), new_id()
        with db.begin() as conn:
            found = conn.execute(account_q, {"v": d["account"]}).first()
            if found is None:
                errors["account"] = ["reference"]
            if errors:
                raise ValueError(errors)
            record = {**fixed, "id": record_id, "created_at": now, "updated_at": now, "name": name,
                      "account": d["account"], "next_step": next_step, "expected_close_date": close, **amounts}
            conn.execute(insert, record)
            account_side.keep_rollups(conn, d["account"])
            out = {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in record.items()}
            changes = {k: [None, v] for k, v in out.items() if v is not None and k not in AUDIT_SKIP}
            conn.execute(audit_insert, {"entity": "opportunity", "record_id": record_id, "version": 1,
                                        "action": "create", "actor_id": actor.id, "at": now, "changes": changes})
        out.update(lookups_of(found))
        out["weighted_amount"] = (amounts["amount"] * amounts["probability"] / 100).quantize(_CENT)
        out["margin"] = amounts["amount"] - amounts["cost"]
        return out

    _check_same(installation, ids[0], engine, floor, by_hand)
    spread = itertools.cycle(ids)  # each create on the next account: ~10 opportunities per account, as in real use
    cases = {"engine": lambda: engine(next(spread)), "floor": lambda: floor(next(spread)),
             "by_hand": lambda: by_hand(next(spread))}
    s = compare(cases, rounds=9 if args.quick else 41, min_sample_ns=10_000_000 if args.quick else 30_000_000)
    with db.begin() as conn:
        drift = [r for r in rollups.rebuild(runtime, conn, ["account"]) if r["corrected"]]
        count = conn.scalar(sa.select(sa.func.count()).select_from(table))
    assert not drift, f"the account rollups drifted: {drift}"
    where = (f"{label}; {len(ids):,} accounts with {PER_ACCOUNT} opportunities each at the start, "
             f"{count / len(ids):.0f} at the end (creates cycle through the accounts)")
    out = [row(f"create: opportunity [{label}]", s["engine"], s["floor"], 3.0, f"{where}; {NOTE}"),
           row(f"create: vs the same work by hand (context) [{label}]", s["engine"], s["by_hand"], None,
               "context floor: the engine's checks, the account reference check (reading the two lookup values), "
               "row, rollup upkeep, audit insert and JSON result hand-written with prepared statements (what the "
               "engine's own overhead is measured against)", floor_label="by hand")]
    if args.profile:
        args.profiles.append(profile(f"create engine [{label}]", cases["engine"], profile_calls(s["engine"])))
    return out


def _check_same(installation, account: str, engine, floor, by_hand) -> None:
    """All three sides store the same row and keep the account's rollups; the engine and by hand also
    answer the same JSON and write the same audit entry."""
    runtime, db = installation.runtime, installation.db
    table, accounts, audit = runtime.entity("opportunity").table, runtime.entity("account").table, runtime.tables["audit"]

    def sums():
        with db.connect() as conn:
            return conn.execute(sa.select(accounts.c.open_pipeline_amount, accounts.c.won_amount)
                                .where(accounts.c.id == account)).one()

    open_before, won_before = sums()
    created = engine(account)
    floor(account)
    with db.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.created_at.desc()).limit(2)).mappings().all()
    ignore = {"id", "created_at", "updated_at"}
    a, b = ({k: v for k, v in r.items() if k not in ignore} for r in rows)
    assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert created["weighted_amount"] == DATA["amount"] * DATA["probability"] / 100
    assert created["account_industry"] is not None and created["account_region"] is not None, created
    assert sums() == (open_before + 2 * DATA["amount"], won_before), (sums(), open_before, won_before)

    assert by_hand(account) == {**engine(account), "id": ANY, "created_at": ANY, "updated_at": ANY}
    with db.connect() as conn:
        last_two = conn.execute(sa.select(audit.c.changes).order_by(audit.c.id.desc()).limit(2)).scalars().all()
    assert last_two[0] == last_two[1], last_two
    assert sums() == (open_before + 4 * DATA["amount"], won_before)


def run(args) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-create-") as tmp:
        installation = _open(f"sqlite:///{Path(tmp) / 'crm.db'}", {})
        try:
            rows += _measure("sqlite", installation, args)
        finally:
            installation.db.dispose()
    if args.pg_url:
        rows += run_postgres(args)
    return rows


def run_postgres(args) -> list[Row]:
    installation = _open(args.pg_url, pg_schema(args.pg_url, "bench_create"))
    try:
        return _measure("postgresql", installation, args)
    finally:
        installation.db.dispose()
