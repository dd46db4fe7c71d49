"""A list of details with master-detail permissions: payments as a rep vs the same list unrestricted.

Payments are details of their contract (``detail: true``): a rep reads exactly the payments of the
contracts the rep may read (scope ``own``: ``contract.owner = :me``). Payment rows carry their
contract's owner and team (kept by the engine), so the engine says this in SQL as ``payment.owner =
:me``, served by the list-view index ``(owner, due_date, id)``; an ``EXISTS`` over the contract is
used only where the contract's role has sharing rules or a pool. The hand-written check below still
uses the contract's owner, so it proves the copied columns right.

Query: all payments, ``sort=due_date`` (the payment's default sort and its "all" list view, served by
``ix_payment_lv_all_all (due_date, id)``), ``limit=50``.
Engine: ``RecordService.list("payment", ...)`` as a rep, a new service per call as per API request.
Floor: the same call in the system context (``actor=None``, no permission predicate); and, as context, the SQL
alone: the rep's statement and the system's vs a plain ``SELECT ... ORDER BY due_date, id LIMIT 51``.
Measured for two reps, because the cost of the predicate follows the share of the payments a rep may
read (the page stops after 50 readable rows): a typical rep (one of 199 sharing 90% of the contracts,
≈0.45% of the payments) and a key-account rep (10%). Each: page 1 vs the system's page 1, and a deep
page by keyset cursor (page 100, or as deep as the rep's rows go) vs its page 1 ("flat across pages").
Context: a contract's own payment list (``filter[contract]=<id>``, its related list) as the rep vs system.

Data (not timed): N payments (``--rows``: 1,000,000; 20,000 with ``--quick``), 10 instalments for each
of N/10 contracts spread over three years of due dates; 200 reps, 1,000 accounts. SQLite: cached
under ``bench/.data/detail_*.sqlite``; PostgreSQL: COPY into its own schema. Before timing, every page
is checked against a hand-written query with the hand-written predicate (same ids, same order), and
the deep page against offset paging. The engine's statements' plans are printed after the table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from crm_platform.engine import Filter, ListQuery
from crm_platform.engine.query import encode_cursor, sort_keys

from .common import Row, compare, pg_schema, profile, profile_calls, ratio, row
from .list_page import cached_sqlite, insert_accounts
from .permissions import _captured_sql, _plan, _plan_summary
from .spanning import base_catalog, bulk_load, open_installation

GENERATOR_VERSION = 2  # bump when the generated rows, users or teams change (2: payments carry owner/team)
LIMIT, DEEP_PAGE = 50, 100
INSTALMENTS, REPS, KEY_SHARE = 10, 200, 10  # the key-account rep owns every KEY_SHARE-th contract
PAID_BEFORE = date(2024, 6, 1)
Q_FIRST = ListQuery(sort=["due_date"], limit=LIMIT)
CONTRACT_COLUMNS = ("id", "version", "owner", "team", "stage", "created_at", "created_by", "updated_at", "updated_by",
                    "contract_no", "name", "account", "amount", "signed_on", "start_date", "end_date", "payment_terms",
                    "paid_amount", "next_due_date")
PAYMENT_COLUMNS = ("id", "version", "owner", "team", "created_at", "created_by", "updated_at", "updated_by", "contract",
                   "instalment_no", "due_date", "amount", "status", "paid_on", "paid_amount", "reminder_days_before")


def _say(msg: str) -> None:
    print(f"  [detail_list] {msg}", flush=True)


def _open(url: str, options: dict):
    return open_installation(url, base_catalog(), options, migrate=False)


# --- data set -----------------------------------------------------------------------------------------

def _instalments(first_due: date, amount: Decimal):
    """(instalment number, due date, amount, paid?) of a contract's plan: monthly, paid before PAID_BEFORE."""
    each = amount / INSTALMENTS
    for k in range(INSTALMENTS):
        due = first_due + timedelta(days=30 * k)
        yield k + 1, due, each, due < PAID_BEFORE


def _contracts(count: int, key: tuple[str, str], reps: list[tuple[str, str]], accounts: list[str]):
    """Contract rows (tuples in CONTRACT_COLUMNS order), with their rollups as the plans make them."""
    from crm_platform.engine.database import new_id
    rng = random.Random(20250607)
    start, created = date(2022, 1, 1), datetime(2021, 12, 1, tzinfo=UTC)
    for i in range(count):
        owner, team = key if i % KEY_SHARE == 0 else reps[rng.randrange(len(reps))]
        first_due, amount = start + timedelta(days=rng.randrange(3 * 365)), Decimal(10 * rng.randrange(1_000, 200_000))
        plan = list(_instalments(first_due, amount))
        paid = sum((each for _, _, each, is_paid in plan if is_paid), Decimal(0))
        unpaid = [due for _, due, _, is_paid in plan if not is_paid]
        at = created + timedelta(minutes=i)
        yield (new_id(), 1, owner, team, "active", at, owner, at, owner, f"CT-{i:07d}", f"Contract {i:07d}",
               accounts[i % len(accounts)], amount, first_due - timedelta(days=30), first_due - timedelta(days=30),
               first_due + timedelta(days=30 * INSTALMENTS), "net30", paid, unpaid[0] if unpaid else None)


def _payments(contracts: list[tuple]):
    """Payment rows (tuples in PAYMENT_COLUMNS order): each contract's plan, with its owner and team."""
    from crm_platform.engine.database import new_id
    for values in contracts:
        c = dict(zip(CONTRACT_COLUMNS, values))
        for k, due, each, paid in _instalments(c["start_date"] + timedelta(days=30), c["amount"]):
            yield (new_id(), 1, c["owner"], c["team"], c["created_at"], c["owner"], c["created_at"], c["owner"], c["id"],
                   k, due, each,
                   "paid" if paid else "planned", due if paid else None, each if paid else None, 3)


def _prepare(installation, n: int, say=_say) -> None:
    """200 reps (one is the key-account rep), 1,000 accounts, n/10 contracts and n payments."""
    accounts_api = installation.accounts
    team = accounts_api.create_team("Sales")
    reps = [(accounts_api.create_user(f"detail_rep_{i:03d}", "bench-password", "rep", "Sales"), team)
            for i in range(REPS)]
    accounts = insert_accounts(installation, reps, 1000)
    runtime, db = installation.runtime, installation.db
    contracts = list(_contracts(n // INSTALMENTS, reps[0], reps[1:], accounts))
    bulk_load(db, runtime.entity("contract").table, CONTRACT_COLUMNS, contracts, say)
    bulk_load(db, runtime.entity("payment").table, PAYMENT_COLUMNS, _payments(contracts), say)


def sqlite_dataset(n: int):
    return cached_sqlite("detail", n, _open, _prepare, _say, GENERATOR_VERSION)


# --- the benchmark -------------------------------------------------------------------------------------

WHO = {"rep": "a typical rep", "key": "the key-account rep", "system": "the system context"}


def _order(payment: sa.Table) -> tuple:
    return payment.c.due_date, payment.c.id


@dataclass
class Scope:
    """One caller's view of the payments: the hand-written predicate, how many rows it admits, its deep page."""
    actor: object
    predicate: object
    matching: int = 0
    deep_page: int = 0
    deep_query: object = None


def _scopes(installation) -> dict[str, Scope]:
    """The two reps and the system context, each with its deep page's keyset query (the service's own cursor)."""
    runtime, db = installation.runtime, installation.db
    er, contract, users = runtime.entity("payment"), runtime.entity("contract").table, runtime.tables["users"]
    payment = er.table
    scopes = {"system": Scope(None, sa.true())}
    with db.connect() as conn:
        for role, name in (("key", "detail_rep_000"), ("rep", "detail_rep_001")):
            uid = conn.scalar(sa.select(users.c.id).where(users.c.username == name))
            # Said differently from the engine's EXISTS: the payments of the rep's contracts.
            scopes[role] = Scope(installation.accounts.actor(uid),
                                 payment.c.contract.in_(sa.select(contract.c.id).where(contract.c.owner == uid)))
        for scope in scopes.values():
            scope.matching = conn.scalar(sa.select(sa.func.count()).select_from(payment).where(scope.predicate))
            scope.deep_page = max(2, min(DEEP_PAGE, (scope.matching - 1) // LIMIT))  # not the last: it has a next
            anchor = conn.execute(sa.select(payment).where(scope.predicate).order_by(*_order(payment))
                                  .offset((scope.deep_page - 1) * LIMIT - 1).limit(1)).mappings().one()
            scope.deep_query = ListQuery(sort=["due_date"], limit=LIMIT,
                                         cursor=encode_cursor(sort_keys(er, ["due_date"]), anchor))
    return scopes


def _check(installation, scopes: dict[str, Scope], engine) -> None:
    """Each caller's pages are exactly the rows its hand-written predicate admits, page 1 and deep
    (keyset and offset paging agree)."""
    payment, db = installation.runtime.entity("payment").table, installation.db

    def expected(predicate, offset):
        with db.connect() as conn:
            return [r.id for r in conn.execute(sa.select(payment.c.id).where(predicate).order_by(*_order(payment))
                                               .offset(offset).limit(LIMIT))]

    for role, scope in scopes.items():
        for query, offset in ((Q_FIRST, 0), (scope.deep_query, (scope.deep_page - 1) * LIMIT)):
            page = engine(role, query)()
            assert [r["id"] for r in page["data"]] == expected(scope.predicate, offset), (role, offset)
            assert page["paging"]["has_more"] == (offset + LIMIT < scope.matching), (role, offset)
        by_offset = engine(role, ListQuery(sort=["due_date"], limit=LIMIT, page=scope.deep_page))()
        assert by_offset["data"] == page["data"], f"{role}: keyset and offset disagree"
    _say(f"checked: every caller's pages are exactly the payments it may read "
         f"({', '.join(f'{role} {scope.matching:,}' for role, scope in scopes.items())})")


def _cases(installation, scopes: dict[str, Scope], engine) -> dict:
    """The engine's pages per caller, and the SQL alone: plain, with the system's and each rep's EXISTS."""
    runtime, db = installation.runtime, installation.db
    payment, contract = runtime.entity("payment").table, runtime.entity("contract").table

    def raw(*where):
        statement = sa.select(payment).where(*where).order_by(*_order(payment)).limit(LIMIT + 1)

        def run():
            with db.connect() as conn:
                return conn.execute(statement).all()
        return run

    parent = contract.c.id == payment.c.contract
    with db.connect() as conn:
        own_contract = conn.scalar(sa.select(contract.c.id).where(contract.c.owner == scopes["rep"].actor.id).limit(1))
    related = ListQuery(filters=[Filter("contract", "eq", own_contract)], sort=["instalment_no"], limit=LIMIT)
    cases = {"sql_plain": raw(), "sql_system": raw(sa.exists().where(parent)),
             "rep_related": engine("rep", related), "system_related": engine("system", related)}
    for role, scope in scopes.items():
        cases[f"{role}_first"], cases[f"{role}_deep"] = engine(role, Q_FIRST), engine(role, scope.deep_query)
        if scope.actor is not None:
            cases[f"sql_{role}"] = raw(sa.exists().where(parent, contract.c.owner == scope.actor.id))
    return cases


def _rows(label: str, scopes: dict[str, Scope], s: dict, plans: dict, dialect: str) -> list[Row]:
    def ms(stats):
        return f"{stats.best / 1e6:.2f} ms"

    def summary(role, which):
        return _plan_summary(plans[(role, which)], dialect)

    total, rows = scopes["system"].matching, []
    for role in ("rep", "key"):
        scope = scopes[role]
        share = f"{scope.matching / total:.2%}"
        rows.append(row(f"detail list: {WHO[role]} ({share}) page 1 vs system [{label}]", s[f"{role}_first"],
                        s["system_first"], 1.5,
                        f"{label}, {total:,} payments; {WHO[role]} reads {scope.matching:,} ({share}) through EXISTS over "
                        f"contract.owner. SQL alone: {ms(s[f'sql_{role}'])} with the predicate vs {ms(s['sql_plain'])} "
                        f"plain (paired {ratio(s[f'sql_{role}'], s['sql_plain']):.2f}×). Plan: {summary(role, 'page 1')}",
                        engine_label=role, floor_label="system"))
    for role in ("rep", "key", "system"):
        scope = scopes[role]
        rows.append(row(f"detail list: {WHO[role]} keyset page {scope.deep_page}/page 1"
                        f"{' (context)' if role == 'system' else ''} [{label}]", s[f"{role}_deep"], s[f"{role}_first"],
                        None if role == "system" else 1.5,
                        f"rows {(scope.deep_page - 1) * LIMIT:,}–{scope.deep_page * LIMIT - 1:,} of {scope.matching:,}, "
                        f"by keyset cursor on due_date. Plan: {summary(role, 'deep')}",
                        engine_label=f"page {scope.deep_page}", floor_label="page 1"))
    rows.append(row(f"detail list: system SQL vs a plain SELECT (context) [{label}]", s["sql_system"], s["sql_plain"], None,
                    "the system context's statement keeps the detail's EXISTS over its contract (parent predicate true) "
                    f"vs SELECT ... ORDER BY due_date, id LIMIT 51. Plan: {summary('system', 'page 1')}",
                    engine_label="EXISTS", floor_label="plain"))
    rows.append(row(f"detail list: one contract's payments, rep vs system (context) [{label}]", s["rep_related"],
                    s["system_related"], None, "filter[contract]=<one of the rep's contracts>, sort instalment_no: the "
                    "contract form's related list", engine_label="rep", floor_label="system"))
    return rows


def _measure(label: str, installation, args) -> list[Row]:
    scopes = _scopes(installation)

    def engine(role, query):  # a new service per call, as per API request
        return lambda: installation.records(scopes[role].actor).list("payment", query)

    _check(installation, scopes, engine)
    plans = {(role, which): _plan(installation, *_captured_sql(installation, engine(role, query)))
             for role, scope in scopes.items() for which, query in (("page 1", Q_FIRST), ("deep", scope.deep_query))}
    cases = _cases(installation, scopes, engine)
    s = compare(cases, rounds=9 if args.quick else 41, min_sample_ns=5_000_000 if args.quick else 20_000_000)
    text = [f"--- query plans of the engine's payment list statements [{label}] ---"]
    for (role, which), lines in plans.items():
        text += [f"{role}, {which}:"] + [f"    {ln}" for ln in lines]
    args.profiles.append("\n".join(text) + "\n")
    if args.profile:
        args.profiles.append(profile(f"detail list: a typical rep, page 1 [{label}]", cases["rep_first"],
                                     profile_calls(s["rep_first"])))
    return _rows(label, scopes, s, plans, installation.db.dialect.name)


def run(args) -> list[Row]:
    installation = sqlite_dataset(args.rows)
    try:
        rows = _measure("sqlite", installation, args)
    finally:
        installation.db.dispose()
    if args.pg_url:
        rows += run_postgres(args)
    return rows


def run_postgres(args) -> list[Row]:
    from crm_platform.engine import make_engine
    schema = "bench_detail"
    installation = open_installation(args.pg_url, base_catalog(), pg_schema(args.pg_url, schema))
    try:
        _say(f"loading {args.rows:,} payments into PostgreSQL (COPY)")
        _prepare(installation, args.rows)
        return _measure("postgresql", installation, args)
    finally:
        installation.db.dispose()
        admin = make_engine(args.pg_url)  # free the space now; the database itself is dropped at the end
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
