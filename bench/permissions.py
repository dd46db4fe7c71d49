"""A list page with record-level permissions: ``RecordService.list`` as a rep, a supervisor and a
manager vs the same call in the system context (no permission predicate), over N opportunities.

Query (as in ``list_page``): ``filter[stage]=proposal&sort=-created_at&limit=50``.
Data: N opportunities owned by the reps of an org tree — Head Office → 4 regions → 5 groups each →
10 reps per group (200 reps; with fewer than 200,000 rows: 2 regions × 2 groups × 5 reps), owners
assigned round-robin in a shuffled order, each row's ``team`` = its owner's team (as the engine sets
it). Every group has a supervisor (role ``supervisor``, scope ``team``), every region a manager
(role ``manager``, scope ``subtree``: the region and its 5 groups = 50 reps, a quarter of the rows).
Users and teams are created with ``Accounts`` (argon2's cheapest profile: passwords don't matter).

Measured, per role, with a new ``RecordService`` per call (as the API builds one per request):

* page 1 as the actor (the engine WITH the role's predicate: ``owner = :me`` / ``team = :my_team`` /
  ``team IN (:subtree)``) vs page 1 in the system context ``actor=None`` (the same call WITHOUT a
  permission predicate) — target ≤ 1.5×;
* a deep page reached with the keyset cursor the service would have produced (page 100 of the
  actor's matching rows, or as deep as they go: a rep's ~833 matches give page 16) vs the actor's
  page 1 — "flat across pages", target ≤ 1.5×.

Before timing, every page is checked against a hand-written Core query with the hand-written
predicate (same ids in the same order), every row against the role's rule (owner / team / team in
the region), the count of visible rows against the generator's, and the system page against the
unrestricted query. The raw SQL of each page (hand-written Core, rows fetched, no conversion) is
timed alongside, to tell the database's share from the engine's; the engine's own statement is
captured and its plan (``EXPLAIN QUERY PLAN`` / ``EXPLAIN ANALYZE``) printed after the table.
SQLite data is cached under ``bench/.data/permissions_*.sqlite``; PostgreSQL gets a fresh copy
(COPY) in its own schema of the run's fresh database.
"""

from __future__ import annotations

import random

import sqlalchemy as sa

from .common import Row, compare, profile, profile_calls, ratio, row, pg_schema
from .list_page import cached_sqlite, generate, insert_accounts, load_opportunities

GENERATOR_VERSION = 1  # bump when the generated rows, users or teams change
LIMIT = 50
DEEP_PAGE = 100
PREFIX = "perm"


def _say(msg: str) -> None:
    print(f"  [permissions] {msg}", flush=True)


# --- the org tree and the data set ----------------------------------------------------------------

def tree_shape(n: int) -> tuple[int, int, int]:
    """(regions, groups per region, reps per group) for ``n`` rows."""
    return (4, 5, 10) if n >= 200_000 else (2, 2, 5)


def _team_names(n: int):
    regions, groups, _ = tree_shape(n)
    root = "Head Office"
    yield root, None
    for r in range(1, regions + 1):
        yield f"Region {r}", root
        for g in range(1, groups + 1):
            yield f"Region {r} / Group {g}", f"Region {r}"


def _users(n: int):
    """(username, role, team name) of everyone in the tree."""
    regions, groups, reps = tree_shape(n)
    for r in range(1, regions + 1):
        yield f"{PREFIX}_mgr_{r}", "manager", f"Region {r}"
        for g in range(1, groups + 1):
            yield f"{PREFIX}_sup_{r}_{g}", "supervisor", f"Region {r} / Group {g}"
            for k in range(1, reps + 1):
                yield f"{PREFIX}_rep_{r}_{g}_{k:02d}", "rep", f"Region {r} / Group {g}"


def _measured_usernames(n: int) -> dict[str, str]:
    """The three actors measured: a rep, their group's supervisor, their region's manager."""
    regions, groups, reps = tree_shape(n)
    r, g, k = min(2, regions), min(3, groups), min(5, reps)
    return {"rep": f"{PREFIX}_rep_{r}_{g}_{k:02d}", "supervisor": f"{PREFIX}_sup_{r}_{g}", "manager": f"{PREFIX}_mgr_{r}"}


def _installation(url: str, options: dict):
    from argon2 import PasswordHasher, profiles

    from crm_platform.engine import compile_runtime, make_engine
    from crm_platform.installation import Installation, Settings
    from crm_platform.metadata import load_catalog
    return Installation(Settings(database_url=url), make_engine(url, **options), compile_runtime(load_catalog("base")),
                        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))


def _prepare(installation, n: int, say=_say) -> None:
    """Teams, users, 1,000 accounts and ``n`` opportunities; secondary indexes dropped during the load."""
    accounts_api = installation.accounts
    for name, parent in _team_names(n):
        accounts_api.create_team(name, parent)
    owners = []
    for username, role, team in _users(n):
        uid = accounts_api.create_user(username, "bench-password", role, team)
        if role == "rep":
            owners.append((uid, accounts_api.team_id(team)))
    random.Random(7).shuffle(owners)  # round-robin over the reps in no particular order
    accounts = insert_accounts(installation, owners, 1000)
    load_opportunities(installation.db, installation.runtime, generate(n, owners, accounts), say, every=250_000)


def sqlite_dataset(n: int):
    """An installation on the cached SQLite file with ``n`` opportunities and the org tree (built once)."""
    return cached_sqlite("permissions", n, _installation, _prepare, _say, GENERATOR_VERSION)


# --- query plans ------------------------------------------------------------------------------------

def _captured_sql(installation, call) -> tuple[str, object]:
    """The list SELECT (statement, parameters) that ``call`` sends to the database."""
    seen = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "ORDER BY" in statement:
            seen.append((statement, parameters))

    sa.event.listen(installation.db, "before_cursor_execute", listen)
    try:
        call()
    finally:
        sa.event.remove(installation.db, "before_cursor_execute", listen)
    assert len(seen) == 1, [s for s, _ in seen]
    return seen[0]


def _plan(installation, statement: str, parameters) -> list[str]:
    """The plan of the engine's own statement: EXPLAIN QUERY PLAN (SQLite) / EXPLAIN ANALYZE (PostgreSQL)."""
    db = installation.db
    with db.connect() as conn:
        if db.dialect.name == "postgresql":
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) " + statement, parameters).all()
            return [r[0] for r in rows]
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    depth = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def _plan_summary(lines: list[str], dialect: str) -> str:
    """One line naming the access path: the index used (or not), sorting, rows read."""
    if dialect == "postgresql":
        nodes: list[list[str]] = []  # [node name, details...]
        for ln in lines:
            text = ln.strip().removeprefix("->  ")
            if "(actual" in text:
                name = text.split(" (actual")[0]
                nodes.append([name] if name == "Limit" else [name, f"{text.split('rows=')[1].split()[0]} rows"])
            elif nodes and text.startswith("Rows Removed by Filter:"):
                nodes[-1].append(f"{text.split(':', 1)[1].strip()} filtered out")
            elif nodes and text.startswith("Sort Method:"):
                nodes[-1].append(text.split(":", 1)[1].strip().split("  ")[0])
        return " → ".join(n[0] + (f" ({', '.join(n[1:])})" if n[1:] else "") for n in nodes)
    return "; ".join(ln.strip() for ln in lines)


# --- the benchmark -------------------------------------------------------------------------------------

def _measure(label: str, installation, n: int, args) -> list[Row]:
    from crm_platform.engine import Filter, ListQuery
    from crm_platform.engine.query import encode_cursor, sort_keys

    runtime, db, accounts = installation.runtime, installation.db, installation.accounts
    er = runtime.entity("opportunity")
    t = er.table
    users, teams = runtime.tables["users"], runtime.tables["teams"]
    names = _measured_usernames(n)
    with db.connect() as conn:
        ids = {role: conn.scalar(sa.select(users.c.id).where(users.c.username == u)) for role, u in names.items()}
        team_parent = dict(conn.execute(sa.select(teams.c.id, teams.c.parent_id)).all())
        rep_count = conn.scalar(sa.select(sa.func.count()).select_from(users).where(users.c.role == "rep"))
    actors = {role: accounts.actor(uid) for role, uid in ids.items()}
    region = actors["manager"].team
    region_teams = {region} | {tid for tid, parent in team_parent.items() if parent == region}
    assert actors["supervisor"].team == actors["rep"].team and team_parent[actors["rep"].team] == region
    # The hand-written predicates: what each role may read, by the roles' definitions.
    allowed = {"rep": t.c.owner == actors["rep"].id, "supervisor": t.c.team == actors["supervisor"].team,
               "manager": t.c.team.in_(sorted(region_teams))}
    row_ok = {"rep": lambda r: r["owner"] == actors["rep"].id,
              "supervisor": lambda r: r["team"] == actors["supervisor"].team,
              "manager": lambda r: r["team"] in region_teams}
    _, groups, reps = tree_shape(n)
    expected_visible = {"rep": n // rep_count, "supervisor": n // rep_count * reps,
                        "manager": n // rep_count * reps * groups}  # round-robin owners: exact when rep_count | n
    stage = t.c.stage == "proposal"
    order = (t.c.created_at.desc(), t.c.id.desc())

    filters = [Filter("stage", "eq", "proposal")]
    keys = sort_keys(er, ["-created_at"])
    q_first = ListQuery(filters=filters, sort=["-created_at"], limit=LIMIT)
    queries, deep_pages, matching = {}, {}, {}
    with db.connect() as conn:
        for role in actors:
            matching[role] = conn.scalar(sa.select(sa.func.count()).select_from(t).where(allowed[role], stage))
            deep = max(2, min(DEEP_PAGE, matching[role] // LIMIT))  # a full page, as deep as the rows go
            anchor = conn.execute(sa.select(t).where(allowed[role], stage).order_by(*order)
                                  .offset((deep - 1) * LIMIT - 1).limit(1)).mappings().one()
            deep_pages[role] = deep
            queries[role] = ListQuery(filters=filters, sort=["-created_at"], limit=LIMIT, cursor=encode_cursor(keys, anchor))
        total_matching = conn.scalar(sa.select(sa.func.count()).select_from(t).where(stage))

    def as_(role):
        return None if role == "system" else actors[role]

    def engine(role, query):  # a new service per call, as per API request
        return lambda: installation.records(as_(role)).list("opportunity", query)

    # --- equivalence: each role gets exactly the rows its predicate allows -------------------------
    def expected_ids(predicate, offset):
        with db.connect() as conn:
            stmt = sa.select(t.c.id).where(predicate, stage).order_by(*order).offset(offset).limit(LIMIT)
            return [r.id for r in conn.execute(stmt)]

    system_page = engine("system", q_first)()
    assert [r["id"] for r in system_page["data"]] == expected_ids(sa.true(), 0), "system page 1"
    assert "cost" in system_page["data"][0]
    for role in actors:
        for which, query, offset in (("page 1", q_first, 0), (f"page {deep_pages[role]}", queries[role],
                                                              (deep_pages[role] - 1) * LIMIT)):
            page = engine(role, query)()
            got = [r["id"] for r in page["data"]]
            assert got == expected_ids(allowed[role], offset), f"{role} {which}: not the rows its predicate allows"
            assert len(got) == LIMIT and page["paging"]["has_more"] == (offset + LIMIT < matching[role]), (role, which)
            assert all(row_ok[role](r) and r["stage"] == "proposal" for r in page["data"]), (role, which)
        if role == "rep":
            assert "cost" not in page["data"][0] and "margin" not in page["data"][0], "rep: hidden fields shown"
        # The same deep page by offset paging, and every visible row counted through the engine's own clause.
        offset_page = installation.records(actors[role]).list(
            "opportunity", ListQuery(filters=filters, sort=["-created_at"], limit=LIMIT, page=deep_pages[role]))
        assert offset_page["data"] == page["data"], f"{role}: keyset and offset disagree"
        clause = installation.records(actors[role]).access.clause(er, "read")
        with db.connect() as conn:
            visible = conn.scalar(sa.select(sa.func.count()).select_from(t).where(clause))
            by_hand = conn.scalar(sa.select(sa.func.count()).select_from(t).where(allowed[role]))
        assert visible == by_hand, (role, visible, by_hand)
        if n % rep_count == 0:
            assert visible == expected_visible[role], (role, visible, expected_visible[role])
        assert matching[role] < total_matching, f"{role}: the predicate restricts nothing"
    _say(f"[{label}] checked: each role's pages are exactly the rows its predicate allows "
         f"(rep {matching['rep']:,}, supervisor {matching['supervisor']:,}, manager {matching['manager']:,} "
         f"of {total_matching:,} matching rows)")

    # --- plans of the engine's own statements ----------------------------------------------------------
    plans = {}
    for role, query in [("system", q_first)] + [(r, q) for r in actors for q in (q_first, queries[r])]:
        which = "page 1" if query is q_first else f"page {deep_pages[role]}"
        statement, parameters = _captured_sql(installation, engine(role, query))
        plans[(role, which)] = _plan(installation, statement, parameters)

    # --- timing -------------------------------------------------------------------------------------
    def raw(predicate):
        statement = sa.select(t).where(predicate, stage).order_by(*order).limit(LIMIT + 1)

        def run():
            with db.connect() as conn:
                return conn.execute(statement).all()
        return run

    reused = installation.records(actors["manager"])
    cases = {"system_first": engine("system", q_first), "sql_system": raw(sa.true())}
    for role in actors:
        cases[f"{role}_first"] = engine(role, q_first)
        cases[f"{role}_deep"] = engine(role, queries[role])
        cases[f"sql_{role}"] = raw(allowed[role])
    cases["manager_reused"] = lambda: reused.list("opportunity", q_first)
    s = compare(cases, rounds=9 if args.quick else 41, min_sample_ns=5_000_000 if args.quick else 20_000_000)

    def ms(stats):
        return f"{stats.best / 1e6:.2f} ms"

    scope = {"rep": "own", "supervisor": "team", "manager": "subtree"}
    predicate_text = {"rep": "owner = :me", "supervisor": "team = :my_team",
                      "manager": f"team IN ({len(region_teams)} teams of the region)"}
    rows = []
    for role in actors:
        deep = deep_pages[role]
        where = (f"{label}, {n:,} rows; {role} (scope {scope[role]}: {predicate_text[role]}) sees "
                 f"{matching[role]:,} of the {total_matching:,} proposals")
        sql = (f"SQL alone (hand-written Core, rows fetched): {ms(s[f'sql_{role}'])} with the predicate vs "
               f"{ms(s['sql_system'])} without (paired ratio {ratio(s[f'sql_{role}'], s['sql_system']):.2f}×)")
        extra = ""
        if role == "manager":
            extra = (f"; with one service reused across calls (org tree loaded once): {ms(s['manager_reused'])}, "
                     f"{ratio(s['manager_reused'], s['system_first']):.2f}× the system context")
        rows.append(row(f"permissions: {role} page 1 vs system [{label}]", s[f"{role}_first"], s["system_first"], 1.5,
                        f"{where}. {sql}{extra}. Plan: {_plan_summary(plans[(role, 'page 1')], db.dialect.name)}",
                        engine_label=role, floor_label="system"))
        rows.append(row(f"permissions: {role} keyset page {deep}/page 1 [{label}]", s[f"{role}_deep"],
                        s[f"{role}_first"], 1.5,
                        f"{role}'s page {deep} (rows {(deep - 1) * LIMIT:,}–{deep * LIMIT - 1:,} of {matching[role]:,}) "
                        f"by keyset cursor vs its page 1. Plan: "
                        f"{_plan_summary(plans[(role, f'page {deep}')], db.dialect.name)}",
                        engine_label=f"page {deep}", floor_label="page 1"))
    text = [f"--- query plans of the engine's list statements [{label}] "
            f"({'EXPLAIN (ANALYZE, COSTS OFF, BUFFERS)' if db.dialect.name == 'postgresql' else 'EXPLAIN QUERY PLAN'}) ---"]
    for (role, which), lines in plans.items():
        text.append(f"{role}, {which}:")
        text += [f"    {ln}" for ln in lines]
    args.profiles.append("\n".join(text) + "\n")
    if args.profile:
        for role in actors:
            args.profiles.append(profile(f"permissions: {role} page 1 [{label}]", cases[f"{role}_first"],
                                         profile_calls(s[f"{role}_first"])))
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
    else:
        _say("PostgreSQL not used (unreachable or --no-postgres): SQLite only")
    return rows


def run_postgres(args) -> list[Row]:
    from crm_platform.engine import make_engine
    schema = "bench_permissions"
    installation = _installation(args.pg_url, pg_schema(args.pg_url, schema))
    try:
        installation.migrate()
        _say(f"loading {args.rows:,} rows into PostgreSQL (COPY)")
        _prepare(installation, args.rows)
        return _measure("postgresql", installation, args.rows, args)
    finally:
        installation.db.dispose()
        admin = make_engine(args.pg_url)  # free the space now; the database itself is dropped at the end
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
