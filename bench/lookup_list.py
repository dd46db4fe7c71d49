"""A list page with two lookup columns over N opportunities, vs the same page without them.

Query (as in ``list_page``): ``filter[stage]=proposal&sort=-created_at&limit=50``.
Engine: ``RecordService.list("opportunity", ...)`` in the base pack, whose opportunity shows
``account_industry`` and ``account_region`` (``lookup: account.industry`` / ``account.region``): the
page, then one query for the page's accounts (``WHERE id IN (...)``, with the caller's read
predicate as a column) and the two values put into each record.
Floor: the same call in a variant of the base pack without those two fields. Lookups are never
stored, so both runtimes have the same tables and read the same rows: one data set serves both.

Data (not timed): 1,000 accounts (industry and region set, every tenth blank) and N opportunities
(list_page's generator and bulk loader). N is 200,000 by default (at most ``--rows``; 20,000 with
``--quick``), or ``CRM_BENCH_LOOKUP_ROWS`` (``=1000000`` for the full million): a million rows took
≈4 minutes to build on SQLite (20 indexes) and ≈2 on PostgreSQL on the reference machine, and the
lookups' cost does not depend on the table's size (they read the page's accounts by id).
SQLite: cached under ``bench/.data/lookup_*.sqlite``; PostgreSQL: COPY into its own schema. Before
timing, the pages are checked equal apart from the two lookups, and each lookup against the account
read by hand.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import sqlalchemy as sa

from .common import Row, bench_actor, compare, pg_schema, profile, profile_calls, row
from .list_page import cached_sqlite, generate, insert_accounts, load_opportunities
from .spanning import (
    base_catalog,
    base_variant,
    drop_fields,
    open_installation,
    table_shape,
)

GENERATOR_VERSION = 1  # bump when the generated rows change
DEFAULT_ROWS = 200_000
ROWS_VARIABLE = "CRM_BENCH_LOOKUP_ROWS"
LOOKUPS = ("account_industry", "account_region")
ACCOUNTS = 1000


def _say(msg: str) -> None:
    print(f"  [lookup_list] {msg}", flush=True)


def table_rows(args) -> int:
    """How many opportunities: ``CRM_BENCH_LOOKUP_ROWS``, else 200,000 (or ``--rows`` if smaller)."""
    return int(os.environ.get(ROWS_VARIABLE) or min(args.rows, DEFAULT_ROWS))


def _open(url: str, options: dict):
    return open_installation(url, base_catalog(), options, migrate=False)


def _prepare(installation, n: int, say=_say) -> None:
    """1,000 accounts with an industry and a region, and ``n`` opportunities over them."""
    actor = bench_actor(installation)
    owners = [(actor.id, actor.team)]
    ids = insert_accounts(installation, owners, ACCOUNTS)
    account = installation.runtime.entity("account")
    industries = [c.value for c in account.entity.field("industry").choices]
    regions = [c.value for c in account.entity.field("region").choices]
    table = account.table
    statement = table.update().where(table.c.id == sa.bindparam("_id")).values(
        industry=sa.bindparam("_industry"), region=sa.bindparam("_region"))
    values = [{"_id": account_id, "_industry": None if i % 10 == 9 else industries[i % len(industries)],
               "_region": None if i % 10 == 9 else regions[i % len(regions)]} for i, account_id in enumerate(ids)]
    with installation.db.begin() as conn:
        conn.execute(statement, values)
    load_opportunities(installation.db, installation.runtime, generate(n, owners, ids), say)


def _variant(installation, catalog, options: dict):
    """The same database seen through the variant catalog (same tables: lookups are not stored)."""
    variant = open_installation(installation.settings.database_url, catalog, options, migrate=False)
    for entity in ("opportunity", "account"):
        assert table_shape(variant.runtime.entity(entity).table) == table_shape(installation.runtime.entity(entity).table)
    return variant


def _measure(label: str, installation, variant, n: int, args) -> list[Row]:
    from crm_platform.engine import Filter, ListQuery
    query = ListQuery(filters=[Filter("stage", "eq", "proposal")], sort=["-created_at"], limit=50)
    with_lookups = installation.records(bench_actor(installation))
    without = variant.records(bench_actor(variant))
    cases = {"lookups": lambda: with_lookups.list("opportunity", query),
             "plain": lambda: without.list("opportunity", query)}
    _check(installation, cases)
    s = compare(cases, rounds=9 if args.quick else 41, min_sample_ns=5_000_000 if args.quick else 20_000_000)
    rows = [row(f"lookups: list page, 2 lookup columns vs none [{label}]", s["lookups"], s["plain"], 1.5,
                f"{label}, {n:,} opportunities, {ACCOUNTS:,} accounts; filter[stage]=proposal, sort -created_at, limit 50; "
                "engine: account_industry and account_region resolved for the page (one query for its accounts); "
                "floor: the same list in a variant without the two lookups", engine_label="lookups", floor_label="none")]
    if args.profile:
        args.profiles.append(profile(f"list with 2 lookups [{label}]", cases["lookups"], profile_calls(s["lookups"])))
    return rows


def _check(installation, cases) -> None:
    """The pages are the same records; the lookups are the accounts' industry and region."""
    got, plain = cases["lookups"]()["data"], cases["plain"]()["data"]
    assert [{k: v for k, v in r.items() if k not in LOOKUPS} for r in got] == plain
    table = installation.runtime.entity("account").table
    with installation.db.connect() as conn:
        accounts = {r.id: (r.industry, r.region) for r in conn.execute(sa.select(table.c.id, table.c.industry, table.c.region))}
    assert [(r["account_industry"], r["account_region"]) for r in got] == [accounts[r["account"]] for r in got]
    assert any(r["account_industry"] for r in got) and any(r["account_industry"] is None for r in got), "want both"


def run(args) -> list[Row]:
    n = table_rows(args)
    _say(f"{n:,} opportunities ({ROWS_VARIABLE}=1000000 for the full million)")
    with tempfile.TemporaryDirectory(prefix="crm-bench-lookup-") as tmp:
        catalog = base_variant(Path(tmp), {"opportunity": drop_fields(*LOOKUPS)})
    installation = cached_sqlite("lookup", n, _open, _prepare, _say, GENERATOR_VERSION)
    variant = _variant(installation, catalog, {})
    try:
        rows = _measure("sqlite", installation, variant, n, args)
    finally:
        installation.db.dispose()
        variant.db.dispose()
    if args.pg_url:
        rows += run_postgres(args, catalog, n)
    return rows


def run_postgres(args, catalog, n: int) -> list[Row]:
    from crm_platform.engine import make_engine
    schema = "bench_lookup"
    options = pg_schema(args.pg_url, schema)
    installation = open_installation(args.pg_url, base_catalog(), options)
    variant = _variant(installation, catalog, options)
    try:
        _say(f"loading {n:,} rows into PostgreSQL (COPY)")
        _prepare(installation, n)
        return _measure("postgresql", installation, variant, n, args)
    finally:
        installation.db.dispose()
        variant.db.dispose()
        admin = make_engine(args.pg_url)  # free the space now; the database itself is dropped at the end
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
