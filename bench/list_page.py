"""A filtered, sorted list page over N opportunities: ``RecordService.list`` vs the equivalent raw Core select.

Query: ``filter[stage]=proposal&sort=-created_at&limit=50`` (about 1/6 of the rows match).
Engine: ``RecordService.list("opportunity", ListQuery(...))`` — the filter parsed and checked, the
select built (``created_at DESC NULLS LAST, id DESC NULLS LAST``, keyset predicate from the cursor),
51 rows fetched with the lookups ``account_industry`` and ``account_region`` (the account LEFT JOINed
into the same query), each row turned into a record (formulas computed) and into JSON, the next
cursor encoded.
Floor: a hand-written Core ``select(table, account.industry, account.region)`` ``FROM opportunity
LEFT JOIN account`` (``account_floor.py``) ``.where(stage == :s).order_by(created_at.desc(),
id.desc()).limit(51)`` (keyset: ``AND created_at <= :c AND (created_at < :c OR id < :i)``), each row
turned into the same JSON dict by hand (dates as ISO strings, the two formulas computed inline).
Both sides' pages are checked to be identical before timing.

Measured: page 1; a deep page (page ~1000, i.e. row 50,000 of the matching rows) reached by keyset,
with the cursor the service itself would have produced there; deep/first (keyset should be flat);
offset paging (``page=N``) to the same depth as context, and the opportunity's own default sort
(``expected_close_date``) as context. The data set — 1,000 accounts (industry and region set, every
tenth blank) and N opportunities spread over them — is loaded with Core executemany (SQLite, cached
under ``bench/.data/`` keyed by catalog version and size) or COPY (PostgreSQL); loading is not timed.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from .account_floor import AccountFloor
from .common import Row, bench_actor, compare, pg_schema, profile, profile_calls, row

DATA_DIR = Path(__file__).resolve().parent / ".data"
GENERATOR_VERSION = 2  # bump when the generated rows change (2: accounts with industry and region)
STAGES = ("initial_contact", "needs_confirmed", "proposal", "negotiation", "won", "lost")
PROBABILITY = {"initial_contact": 10, "needs_confirmed": 30, "proposal": 50, "negotiation": 80, "won": 100, "lost": 0}
SOURCES = ("web_form", "ad", "event", "referral", "partner", "customer_service", "import", "canvassing", "tender", "other")
TYPES = ("new_business", "upsell", "renewal")
COLUMNS = ("id", "version", "owner", "team", "stage", "created_at", "created_by", "updated_at", "updated_by",
           "name", "account", "primary_contact", "decision_maker", "opportunity_type", "amount", "probability",
           "expected_close_date", "source", "next_step", "competitors", "description", "lost_reason", "cost")
BATCH = 50_000


def _say(msg: str) -> None:
    print(f"  [list_page] {msg}", flush=True)


# --- data set -----------------------------------------------------------------------------------------

def _uuid7(ms: int, rng: random.Random) -> str:
    rand = rng.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def generate(n: int, users: list[tuple[str, str]], accounts: list[str]):
    """Yield ``n`` opportunity rows (tuples in COLUMNS order), created_at strictly increasing."""
    rng = random.Random(20250101)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    close_base = date(2022, 3, 1)
    for i in range(n):
        created = start + timedelta(seconds=i * 90 + rng.randrange(60), microseconds=rng.randrange(1_000_000))
        owner, team = users[i % len(users)]
        stage = STAGES[rng.randrange(6)]
        amount = round(rng.uniform(1_000, 5_000_000), 2) if i % 10 else None
        yield (_uuid7(int(created.timestamp() * 1000), rng), 1 + i % 3, owner, team, stage, created, owner,
               created + timedelta(days=i % 20), owner, f"Opportunity {i:07d}", accounts[rng.randrange(len(accounts))],
               None, None, TYPES[i % 3], amount, PROBABILITY[stage],
               close_base + timedelta(days=(i * 90) // 86400 + rng.randrange(180)), SOURCES[i % 10],
               "Call back next week" if i % 4 == 0 else None, None, None,
               "price" if stage == "lost" and i % 2 else None, round(amount * 0.6, 2) if amount else None)


def _prepare(installation, n: int, say=_say):
    """Users, 1,000 accounts with an industry and a region, and ``n`` opportunities; secondary indexes
    dropped during the load and rebuilt."""
    actor = bench_actor(installation)
    accounts_api = installation.accounts
    users = [(actor.id, actor.team)]
    for name, team in (("rep_a", "Bench"), ("rep_b", "Bench East"), ("rep_c", "Bench East"), ("rep_d", "Bench")):
        if accounts_api.team_id(team) is None:
            accounts_api.create_team(team)
        uid = accounts_api.create_user(f"bench_{name}", "bench-password", "rep", team)
        users.append((uid, accounts_api.team_id(team)))
    accounts = insert_accounts(installation, [(actor.id, actor.team)], 1000, classified=True)
    load_opportunities(installation.db, installation.runtime, generate(n, users, accounts), say)


def insert_accounts(installation, owners: list[tuple[str, str]], count: int, *, classified: bool = False) -> list[str]:
    """``count`` customer accounts owned round-robin by ``owners`` ((user id, team id) pairs); their ids.
    ``classified``: each with an industry and a region (what the opportunity's lookups show), every
    tenth without."""
    account = installation.runtime.entity("account")
    industries = [c.value for c in account.entity.field("industry").choices]
    regions = [c.value for c in account.entity.field("region").choices]
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        owner, team = owners[i % len(owners)]
        shown = classified and i % 10 != 9
        rows.append({"id": _uuid7(int(now.timestamp() * 1000), random.Random(i)), "version": 1, "owner": owner,
                     "team": team, "created_at": now, "updated_at": now, "created_by": owner, "updated_by": owner,
                     "name": f"Account {i:04d}", "relationship_type": "customer", "customer_type": "company",
                     "industry": industries[i % len(industries)] if shown else None,
                     "region": regions[i % len(regions)] if shown else None})
    with installation.db.begin() as conn:
        conn.execute(account.table.insert(), rows)
    return [row["id"] for row in rows]


def load_opportunities(db, runtime, rows, say=_say, every: int = 200_000) -> None:
    """Bulk-load generated opportunity rows (tuples in COLUMNS order): indexes dropped during the
    load and rebuilt after, COPY on PostgreSQL, batched executemany elsewhere. Not measured."""
    table = runtime.entity("opportunity").table
    indexes = list(table.indexes)
    t0 = time.monotonic()
    with db.begin() as conn:
        for index in indexes:
            index.drop(conn)
        if db.dialect.name == "postgresql":
            cursor = conn.connection.driver_connection.cursor()
            with cursor.copy(f"COPY {table.name} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for i, values in enumerate(rows, 1):
                    copy.write_row(values)
                    if i % every == 0:
                        say(f"copied {i:,} rows ({time.monotonic() - t0:.0f}s)")
        else:
            insert, batch = table.insert(), []
            for i, values in enumerate(rows, 1):
                batch.append(dict(zip(COLUMNS, values)))
                if len(batch) == BATCH:
                    conn.execute(insert, batch)
                    batch = []
                    if i % every == 0:
                        say(f"inserted {i:,} rows ({time.monotonic() - t0:.0f}s)")
            if batch:
                conn.execute(insert, batch)
        say(f"loaded {i:,} rows in {time.monotonic() - t0:.0f}s; building indexes")
        for index in indexes:
            index.create(conn)
    with db.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    say(f"ready in {time.monotonic() - t0:.0f}s")


def _installation(url: str, options: dict):
    from crm_platform.engine import compile_runtime, make_engine
    from crm_platform.installation import Installation, Settings
    from crm_platform.metadata import load_catalog
    return Installation(Settings(database_url=url), make_engine(url, **options), compile_runtime(load_catalog("base")))


def cached_sqlite(kind: str, n: int, open_installation, prepare, say=_say, generator: int = GENERATOR_VERSION):
    """An installation on a cached SQLite data set, built on first use by ``prepare(inst, n)``.
    The cache key covers the catalog version, the generator version and the engine's schema (tables,
    columns, indexes), so a changed index never benchmarks a stale file."""
    import hashlib

    from crm_platform.engine import compile_runtime
    from crm_platform.metadata import load_catalog
    runtime = compile_runtime(load_catalog("base"))
    shape = sorted((t.name, tuple(c.name for c in t.c), tuple(sorted(i.name for i in t.indexes)))
                   for t in runtime.metadata.tables.values())
    key = hashlib.sha256(repr((runtime.version, generator, shape)).encode()).hexdigest()[:12]
    DATA_DIR.mkdir(exist_ok=True)
    path = DATA_DIR / f"{kind}_{n}_{key}.sqlite"
    if not path.exists():
        for stale in DATA_DIR.glob(f"{kind}_*.sqlite"):  # built for another catalog, generator or schema
            say(f"removing stale {stale.name}")
            stale.unlink()
        say(f"building {path.name} (once; cached in {DATA_DIR})")
        tmp = path.with_suffix(".building")
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        inst = open_installation(f"sqlite:///{tmp}", {})
        inst.migrate()
        prepare(inst, n)
        with inst.db.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        inst.db.dispose()
        os.replace(tmp, path)
    else:
        say(f"using cached {path.name}")
    return open_installation(f"sqlite:///{path}", {})


def sqlite_dataset(n: int):
    """An installation on the cached SQLite file with ``n`` opportunities (built on first use)."""
    return cached_sqlite("opportunity", n, _installation, _prepare)


# --- the floor ------------------------------------------------------------------------------------------

def _floor_json(rows) -> list[dict]:
    """Rows → the API's JSON records, by hand: ISO dates, the two formulas computed inline (the lookups
    come from the join under their own names)."""
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["created_at"] = d["created_at"].isoformat()
        d["updated_at"] = d["updated_at"].isoformat()
        close = d["expected_close_date"]
        d["expected_close_date"] = close.isoformat() if close is not None else None
        amount, probability, cost = d["amount"], d["probability"], d["cost"]
        d["weighted_amount"] = amount * probability / 100 if amount is not None and probability is not None else None
        d["margin"] = amount - cost if amount is not None and cost is not None else None
        out.append(d)
    return out


def _measure(label: str, installation, n: int, args) -> list[Row]:
    from crm_platform.engine import Filter, ListQuery
    from crm_platform.engine.query import encode_cursor, sort_keys

    actor = bench_actor(installation)
    service = installation.records(actor)
    er = installation.runtime.entity("opportunity")
    t, db = er.table, installation.db
    with db.connect() as conn:
        matching = conn.scalar(sa.select(sa.func.count()).select_from(t).where(t.c.stage == "proposal"))
    limit = 50
    deep_page = max(2, min(1000, matching // limit // 2))
    depth = (deep_page - 1) * limit  # rows before the deep page
    keys = sort_keys(er, ["-created_at"])
    with_lookups = AccountFloor(installation.runtime, db.dialect.name).select().where(t.c.stage == sa.bindparam("s"))
    base = with_lookups.order_by(t.c.created_at.desc(), t.c.id.desc())
    first_stmt = base.limit(limit + 1)
    keyset_stmt = base.where(t.c.created_at <= sa.bindparam("c"),
                             sa.or_(t.c.created_at < sa.bindparam("c"), t.c.id < sa.bindparam("i"))).limit(limit + 1)
    offset_stmt = base.limit(limit + 1).offset(depth)
    default_stmt = with_lookups.order_by(t.c.expected_close_date.asc(), t.c.id.asc()).limit(limit + 1)
    with db.connect() as conn:  # the row just before the deep page; the service's own cursor after it
        anchor = conn.execute(base.limit(1).offset(depth - 1), {"s": "proposal"}).mappings().one()
    cursor = encode_cursor(keys, anchor)
    filters = [Filter("stage", "eq", "proposal")]
    q_first = ListQuery(filters=filters, sort=["-created_at"], limit=limit)
    q_deep = ListQuery(filters=filters, sort=["-created_at"], limit=limit, cursor=cursor)
    q_offset = ListQuery(filters=filters, sort=["-created_at"], limit=limit, page=deep_page)
    q_default = ListQuery(filters=filters, limit=limit)

    def page(statement, params):
        with db.connect() as conn:
            rows = conn.execute(statement, params).all()
        return {"data": _floor_json(rows[:limit]), "has_more": len(rows) > limit}

    cases = {
        "engine_first": lambda: service.list("opportunity", q_first),
        "floor_first": lambda: page(first_stmt, {"s": "proposal"}),
        "engine_deep": lambda: service.list("opportunity", q_deep),
        "floor_deep": lambda: page(keyset_stmt, {"s": "proposal", "c": anchor["created_at"], "i": anchor["id"]}),
    }
    slow_cases = {
        "engine_offset": lambda: service.list("opportunity", q_offset),
        "floor_offset": lambda: page(offset_stmt, {"s": "proposal"}),
        "engine_default": lambda: service.list("opportunity", q_default),
        "floor_default": lambda: page(default_stmt, {"s": "proposal"}),
    }
    # Both sides return the same page.
    for side in ("first", "deep", "offset", "default"):
        engine_page = (cases | slow_cases)[f"engine_{side}"]()
        floor_page = (cases | slow_cases)[f"floor_{side}"]()
        assert engine_page["data"] == floor_page["data"], side
        assert engine_page["paging"]["has_more"] == floor_page["has_more"], side
    assert service.list("opportunity", q_offset)["data"] == service.list("opportunity", q_deep)["data"]
    assert any(r["account_industry"] for r in cases["floor_first"]()["data"]), "the lookups show values"

    s = compare(cases, rounds=9 if args.quick else 41, min_sample_ns=5_000_000 if args.quick else 20_000_000)
    slow = compare(slow_cases, rounds=3 if args.quick else 9)
    where = f"{label}, {n:,} rows, {matching:,} match"
    rows = [
        row(f"list: page 1 [{label}]", s["engine_first"], s["floor_first"], 2.0,
            f"{where}; filter[stage]=proposal, sort -created_at, limit 50; both sides also read the lookups "
            "account_industry and account_region (the page's query LEFT JOINs the account)"),
        row(f"list: keyset page {deep_page} [{label}]", s["engine_deep"], s["floor_deep"], 2.0,
            f"row {depth:,} of the matching rows, reached with the service's own cursor"),
        row(f"list: keyset deep/first [{label}]", s["engine_deep"], s["engine_first"], 1.5,
            f"engine page {deep_page} vs engine page 1 (flat ⇒ ≈1); floor's own deep/first on {label}: "
            f"{s['floor_deep'].best / s['floor_first'].best:.2f}", engine_label=f"page {deep_page}", floor_label="page 1"),
        row(f"list: offset page={deep_page} (context) [{label}]", slow["engine_offset"], s["engine_deep"], None,
            f"engine offset paging vs engine keyset at the same depth; raw Core offset on {label}: "
            f"{slow['floor_offset'].best / 1e6:.1f} ms", paired=False, engine_label="offset", floor_label="keyset"),
        row(f"list: default sort expected_close_date (context) [{label}]", slow["engine_default"],
            slow["floor_default"], None, "the opportunity's own default_sort (index ix_opportunity_lv_all_won: stage, expected_close_date, id)"),
    ]
    if args.profile:
        args.profiles.append(profile(f"list engine page 1 [{label}]", cases["engine_first"],
                                     profile_calls(s["engine_first"])))
        args.profiles.append(profile(f"list engine keyset page {deep_page} [{label}]", cases["engine_deep"],
                                     profile_calls(s["engine_deep"])))
    return rows


def run(args) -> list[Row]:
    n = args.rows
    installation = sqlite_dataset(n)
    try:
        rows = _measure("sqlite", installation, n, args)
    finally:
        installation.db.dispose()
    if args.pg_url:
        rows += run_postgres(args)
    return rows


def run_postgres(args) -> list[Row]:
    installation = _installation(args.pg_url, pg_schema(args.pg_url, "bench_list"))
    try:
        installation.migrate()
        _say(f"loading {args.rows:,} rows into PostgreSQL (COPY)")
        _prepare(installation, args.rows)
        return _measure("postgresql", installation, args.rows, args)
    finally:
        installation.db.dispose()
