"""Single-record create of an opportunity: ``RecordService.create`` vs a raw SQLAlchemy Core insert + commit.

Engine: the whole write path for one opportunity sent as JSON values — validation of the values,
defaults, stage and owner, the account reference and the owner checked in the database, the
owner's team looked up, the row inserted, the audit row inserted, one commit, the record returned
as JSON (formulas computed).
Floor: ``with engine.begin(): conn.execute(table.insert(), row)`` of the same row (same columns,
same values, a fresh id and timestamps per call) — one insert and one commit, nothing else.

SQLite: a file database in WAL mode (synchronous=NORMAL), as ``make_engine`` configures it.
PostgreSQL (when reachable): its own schema in the fresh benchmark database.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from decimal import Context, Decimal
from unittest.mock import ANY
from pathlib import Path

import sqlalchemy as sa

from .common import Row, bench_actor, compare, profile, profile_calls, row, pg_schema

NOTE = ("engine also validates the values, applies defaults, checks the account reference and the owner, "
        "looks up the owner's team and writes the audit row, in the same transaction")

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


def _measure(label: str, installation, args) -> list[Row]:
    from crm_platform.engine.database import new_id, utcnow
    actor = bench_actor(installation)
    service = installation.records(actor)
    account = service.create("account", {"name": "Bench Logistics Co."})["id"]
    data = {**DATA, "account": account}
    table = installation.runtime.entity("opportunity").table
    db = installation.db
    fixed = {"version": 1, "owner": actor.id, "team": actor.team, "stage": "initial_contact",
             "created_by": actor.id, "updated_by": actor.id, "name": DATA["name"], "account": account,
             "primary_contact": None, "decision_maker": None, "opportunity_type": "new_business",
             "amount": _amount(DATA["amount"]), "probability": _amount(DATA["probability"], _PERCENT_MAX),
             "expected_close_date": date(2025, 9, 30), "source": DATA["source"], "next_step": DATA["next_step"],
             "competitors": None, "description": DATA["description"], "lost_reason": None, "cost": _amount(DATA["cost"])}
    insert = table.insert()

    def engine():
        return service.create("opportunity", data)

    def floor():
        now = utcnow()
        with db.begin() as conn:
            conn.execute(insert, {**fixed, "id": new_id(), "created_at": now, "updated_at": now})

    # Context: the same work as the engine, written by hand with prepared (cached) statements:
    # check the values, the account and owner exist, the owner's team, the row, the audit row.
    runtime = installation.runtime
    accounts, users, audit = runtime.entity("account").table, runtime.tables["users"], runtime.tables["audit"]
    account_q = sa.select(accounts.c.id).where(accounts.c.id == sa.bindparam("v"))
    owner_q = sa.select(users.c.id, users.c.team_id).where(users.c.id == sa.bindparam("v"), users.c.active)
    audit_insert = audit.insert()

    def by_hand():
        d, errors = data, {}
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
            if conn.execute(account_q, {"v": d["account"]}).first() is None:
                errors["account"] = ["reference"]
            owner = conn.execute(owner_q, {"v": actor.id}).first()
            if owner is None:
                errors["owner"] = ["reference"]
            if errors:
                raise ValueError(errors)
            record = {**fixed, "id": record_id, "created_at": now, "updated_at": now, "team": owner.team_id,
                      "name": name, "next_step": next_step, "expected_close_date": close, **amounts}
            conn.execute(insert, record)
            out = {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in record.items()}
            changes = {k: [None, v] for k, v in out.items() if v is not None and k not in AUDIT_SKIP}
            conn.execute(audit_insert, {"entity": "opportunity", "record_id": record_id, "version": 1,
                                        "action": "create", "actor_id": actor.id, "at": now, "changes": changes})
        out["weighted_amount"] = (amounts["amount"] * amounts["probability"] / 100).quantize(_CENT)
        out["margin"] = amounts["amount"] - amounts["cost"]
        return out

    # Same row either way (apart from id and timestamps).
    created = engine()
    floor()
    with db.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.created_at.desc()).limit(2)).mappings().all()
    ignore = {"id", "created_at", "updated_at"}
    a, b = ({k: v for k, v in r.items() if k not in ignore} for r in rows)
    assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert created["weighted_amount"] == DATA["amount"] * DATA["probability"] / 100

    assert by_hand() == {**engine(), "id": ANY, "created_at": ANY, "updated_at": ANY}
    with db.connect() as conn:
        last_two = conn.execute(sa.select(audit.c.changes).order_by(audit.c.id.desc()).limit(2)).scalars().all()
    assert last_two[0] == last_two[1], last_two
    s = compare({"engine": engine, "floor": floor, "by_hand": by_hand}, rounds=9 if args.quick else 41,
                min_sample_ns=10_000_000 if args.quick else 30_000_000)
    out = [row(f"create: opportunity [{label}]", s["engine"], s["floor"], 3.0, NOTE),
           row(f"create: vs the same work by hand (context) [{label}]", s["engine"], s["by_hand"], None,
               "context floor: the engine's checks, reference/owner/team queries, row + audit insert and JSON result "
               "hand-written with prepared statements (what the engine's own overhead is measured against)",
               floor_label="by hand")]
    if args.profile:
        args.profiles.append(profile(f"create engine [{label}]", engine, profile_calls(s["engine"])))
    return out


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
