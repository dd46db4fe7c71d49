"""Requests per second over HTTP: the engine app vs a minimal Flask floor app, both under gunicorn.

Two servers run side by side on free 127.0.0.1 ports, each ``gunicorn`` with 2 sync workers and the
same settings: the engine (``crm_platform.web:create_app()``, configured by ``CRM_DATABASE_URL`` /
``CRM_PACKS`` / ``CRM_INSTANCE_PATH``) and the floor (``bench.http_floor:create_app()``), which does
the same work for a sales rep by hand — one hand-written SELECT for the bearer token, the same SQL
with the same permission predicate and columns, the account's lookups and rollups
(``account_floor.py``), the same JSON (see ``http_floor.py``).

Data: 100,000 opportunities (``--quick``: 5,000) owned round-robin by four reps in two teams, on
10,000 accounts (500; ten opportunities each) owned by the same reps, industry and region set on
nine in ten; each opportunity is on an account of its owner, except every tenth, on a colleague's.
Loaded by the bulk loader of ``list_page``, the accounts' rollups computed by the engine's
``rollups.rebuild`` (SQLite: cached under ``bench/.data/http_*.sqlite`` and copied for the run, since
the create case writes; PostgreSQL: COPY into its own schema of the run's fresh database). The newest
fifth of the rows are all early-stage (``initial_contact``): a rep's list filtered on ``proposal``
and sorted newest first must skip them, as in a real pipeline.

Measured, as the rep ``bench_rep_a`` (who sees a quarter of the rows):

* GET by id — ``GET /api/records/opportunity/<id>`` (the rep's newest proposal on one of its accounts);
* list — ``GET /api/records/opportunity?filter[stage]=proposal&sort=-created_at&limit=50``;
* entity description — ``GET /api/meta/entities/opportunity``;
* create — ``POST /api/records/opportunity`` (a fresh record per request, each on the next of the
  rep's accounts, so no account gathers the run's thousands of creates).

Before timing, both servers' answers are compared: the same body for GET by id, list and
description; for create, the same stored row and audit entry (apart from id and timestamps), the
same response, and each create moving the account's open pipeline by its amount; after timing, the
engine's ``rollups.rebuild`` must find no account to correct. Load: ``wrk`` (one thread, 4
connections; a Lua script sets the headers and the POST bodies in turn), or a small threaded Python
client when ``wrk`` is not installed. Rounds alternate engine/floor (engine first in even rounds,
floor first in odd ones); the ratio is the median over rounds of floor req/s ÷ engine req/s
measured back to back. Target ≤ 1.5×.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import simplejson
import sqlalchemy as sa

from .common import Row, pg_schema
from .list_page import cached_sqlite, generate, insert_accounts, load_opportunities

GENERATOR_VERSION = 2  # bump when the generated rows, users or teams change (2: accounts for the lookups and rollups)
PER_ACCOUNT = 10  # opportunities per account
TARGET = 1.5
REPO = Path(__file__).resolve().parent.parent
WRK = shutil.which("wrk")
REPS = (("rep_a", "Bench"), ("rep_b", "Bench East"), ("rep_c", "Bench"), ("rep_d", "Bench East"))
SCHEMA = "bench_http"
BODY = {"name": "Cold-chain rollout, phase 2", "amount": 1250000.5, "probability": 40,
        "expected_close_date": "2025-09-30", "source": "referral", "next_step": "Send the revised quote",
        "description": "Three warehouses and 40 refrigerated trucks; telemetry and a customer portal."}


def _say(msg: str) -> None:
    print(f"  [http] {msg}", flush=True)


# --- the data set -------------------------------------------------------------------------------------

def _installation(url: str, options: dict):
    from argon2 import PasswordHasher, profiles

    from crm_platform.engine import compile_runtime, make_engine
    from crm_platform.installation import Installation, Settings
    from crm_platform.metadata import load_catalog
    return Installation(Settings(database_url=url), make_engine(url, **options), compile_runtime(load_catalog("base")),
                        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))


def _shaped(rows, n: int, accounts: list[str]):
    """The generated rows made like the reps' pipelines:

    * each opportunity sits on an account of its owner — opportunities and accounts are both dealt
      round-robin to the reps, so row ``i`` and account ``i mod len(accounts)`` share their owner,
      and each account gets ``n / len(accounts)`` opportunities — except every tenth, which sits on a
      colleague's account (whose lookups its owner may not see);
    * the newest fifth of the rows are early-stage: new business has not reached a proposal yet.
    """
    assert len(accounts) % len(REPS) == 0, "accounts must be dealt evenly to the reps"
    for i, values in enumerate(rows):
        account = accounts[(i + (i % 10 == 0)) % len(accounts)]
        values = values[:10] + (account,) + values[11:]
        if i >= n * 4 // 5:
            values = values[:4] + ("initial_contact",) + values[5:15] + (10,) + values[16:21] + (None, values[22])
        yield values


def _prepare(installation, n: int, say=_say) -> None:
    """Two teams, an admin, four reps, ``n / 10`` accounts owned by the reps (industry and region set,
    every tenth blank) and ``n`` opportunities; the accounts' rollups computed by the engine's ``rebuild``."""
    from crm_platform.engine import rollups
    accounts_api = installation.accounts
    for team in ("Bench", "Bench East"):
        accounts_api.create_team(team)
    accounts_api.create_user("bench_admin", "bench-password", "admin", "Bench")
    owners = [(accounts_api.create_user(f"bench_{name}", "bench-password", "rep", team), accounts_api.team_id(team))
              for name, team in REPS]
    accounts = insert_accounts(installation, owners, n // PER_ACCOUNT, classified=True)
    load_opportunities(installation.db, installation.runtime, _shaped(generate(n, owners, accounts), n, accounts), say)
    with installation.db.begin() as conn:
        rollups.rebuild(installation.runtime, conn, ["account"])
    say(f"{len(accounts):,} accounts' rollups computed")


# --- servers and load ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``gunicorn`` serving ``app`` with 2 sync workers on a free port (stopped by :meth:`stop`)."""

    def __init__(self, name: str, app: str, env: dict[str, str], workdir: Path):
        self.name, self.port = name, _free_port()
        config = workdir / "gunicorn.conf.py"  # an empty config: the same settings for both servers
        config.touch()
        self.log = open(workdir / f"{name}.log", "w+b")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(config), "-w", "2", "-k", "sync",
             "-b", f"127.0.0.1:{self.port}", "--log-level", "warning", app],
            env={**os.environ, "PYTHONPATH": str(REPO), **env}, cwd=workdir, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} server exited: {self.output()}")
            try:
                self.request("GET", "/api/meta/entities/opportunity")
                self.request("GET", "/api/meta/entities/opportunity")  # both workers up (most likely)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{name} server did not start: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Case:
    """One endpoint: method, path, headers and the bodies sent in turn (the same for both servers)."""

    def __init__(self, name: str, method: str, path: str, headers: dict[str, str], bodies: tuple[bytes, ...] = ()):
        self.name, self.method, self.path, self.headers, self.bodies = name, method, path, headers, bodies

    def body(self, k: int = 0) -> bytes | None:
        """The ``k``-th request's body (the bodies in turn), or None."""
        return self.bodies[k % len(self.bodies)] if self.bodies else None

    def script(self, workdir: Path) -> Path:
        path = workdir / f"{re.sub(r'[^a-z]+', '_', self.name)}.lua"
        lines = [f"wrk.method = {_lua(self.method)}"]
        lines += [f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in self.headers.items()]
        if self.bodies:
            lines += ["local bodies = {" + ", ".join(_lua(b.decode()) for b in self.bodies) + "}",
                      "local sent = 0",
                      "request = function()",
                      "  sent = sent % #bodies + 1",
                      "  return wrk.format(nil, nil, nil, bodies[sent])",
                      "end"]
        path.write_text("\n".join(lines) + "\n")
        return path


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def requests_per_second(server: Server, case: Case, seconds: int, workdir: Path) -> float:
    """Requests per second ``server`` answers for ``case`` over ``seconds`` (every answer must be 2xx)."""
    if WRK:
        out = subprocess.run([WRK, "-t1", "-c4", f"-d{seconds}s", "-s", str(case.script(workdir)),
                              server.url(case.path)], capture_output=True, text=True, check=True).stdout
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: .*", out)
        if bad or (errors and re.search(r"(read|write|timeout) [1-9]", errors.group(0))):
            raise RuntimeError(f"{server.name} {case.name}: failed requests under load:\n{out}\n{server.output()}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return _python_load(server, case, seconds)


def _python_load(server: Server, case: Case, seconds: int, connections: int = 4) -> float:
    """The fallback load generator: ``connections`` threads, each sending requests back to back."""
    counts, failures = [0] * connections, []
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            sent = i + connections * counts[i]  # the connections take the bodies in turn
            status, body = server.request(case.method, case.path, case.body(sent), case.headers)
            if not 200 <= status < 300:
                failures.append((status, body[:200]))
                return
            counts[i] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{server.name} {case.name}: failed requests: {failures[:3]}")
    return sum(counts) / (time.monotonic() - started)


# --- equivalence ----------------------------------------------------------------------------------------

def _parsed(server: Server, case: Case, expect: int = 200):
    status, body = server.request(case.method, case.path, case.body(), case.headers)
    assert status == expect, (server.name, case.name, status, body[:500], server.output())
    return simplejson.loads(body, use_decimal=True)


def _check_same(engine: Server, floor: Server, case: Case, installation) -> None:
    """Both servers answer ``case`` alike: the same body; for create, also the same stored row and audit entry."""
    if case.method == "GET":
        a, b = _parsed(engine, case), _parsed(floor, case)
        assert a == b, (case.name, _first_difference(a, b))
        return
    runtime = installation.runtime
    table, audit, accounts = runtime.entity("opportunity").table, runtime.tables["audit"], runtime.entity("account").table
    account = simplejson.loads(case.body())["account"]
    pipeline = sa.select(accounts.c.open_pipeline_amount).where(accounts.c.id == account)
    with installation.db.connect() as conn:
        before = conn.scalar(pipeline)
    made = []
    for server in (engine, floor):  # each create adds its amount to the account's open pipeline
        made.append(_parsed(server, case, 201))
        with installation.db.connect() as conn:
            assert conn.scalar(pipeline) == before + len(made) * made[0]["amount"], (server.name, "open_pipeline_amount")
    ignore = {"id", "created_at", "updated_at"}
    assert ({k: v for k, v in made[0].items() if k not in ignore}
            == {k: v for k, v in made[1].items() if k not in ignore}), _first_difference(*made)
    with installation.db.connect() as conn:
        rows = [conn.execute(sa.select(table).where(table.c.id == m["id"])).mappings().one() for m in made]
        changes = [conn.scalar(sa.select(audit.c.changes).where(audit.c.record_id == m["id"])) for m in made]
    stored = [{k: v for k, v in r.items() if k not in ignore} for r in rows]
    assert stored[0] == stored[1], _first_difference(*stored)
    assert changes[0] == changes[1], _first_difference(*changes)


def _drift(installation) -> list[dict]:
    """The account rollups ``rebuild`` had to correct: none if every create kept them right."""
    from crm_platform.engine import rollups
    with installation.db.begin() as conn:
        return [r for r in rollups.rebuild(installation.runtime, conn, ["account"]) if r["corrected"]]


def _first_difference(a, b) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                return f"{key}: {_first_difference(a.get(key, '<absent>'), b.get(key, '<absent>'))}"
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return f"[{i}] {_first_difference(x, y)}"
    return f"{a!r} != {b!r}"


# --- the benchmark --------------------------------------------------------------------------------------

def _cases(installation) -> tuple[dict[str, Case], str]:
    """The four requests of the rep ``bench_rep_a`` (a fresh token), and a line describing the data."""
    runtime, db = installation.runtime, installation.db
    t, users = runtime.entity("opportunity").table, runtime.tables["users"]
    accounts_table = runtime.entity("account").table
    with db.connect() as conn:
        rep_id = conn.scalar(sa.select(users.c.id).where(users.c.username == "bench_rep_a"))
        own_accounts = conn.scalars(sa.select(accounts_table.c.id).where(accounts_table.c.owner == rep_id)
                                    .order_by(accounts_table.c.name)).all()
        record_id = conn.scalar(sa.select(t.c.id).where(t.c.owner == rep_id, t.c.stage == "proposal",
                                                        t.c.account.in_(own_accounts))
                                .order_by(t.c.created_at.desc()).limit(1))
        rows = conn.scalar(sa.select(sa.func.count()).select_from(t))
        visible = conn.scalar(sa.select(sa.func.count()).select_from(t).where(t.c.owner == rep_id))
        accounts = conn.scalar(sa.select(sa.func.count()).select_from(accounts_table))
    token = installation.accounts.issue_token(installation.accounts.actor(rep_id))
    auth = {"Authorization": f"Bearer {token}"}
    bodies = tuple(simplejson.dumps({**BODY, "account": account}).encode() for account in own_accounts)
    cases = {
        "get": Case("GET by id", "GET", f"/api/records/opportunity/{record_id}", auth),
        "list": Case("list", "GET", "/api/records/opportunity?filter[stage]=proposal&sort=-created_at&limit=50", auth),
        "describe": Case("entity description", "GET", "/api/meta/entities/opportunity", auth),
        "create": Case("create", "POST", "/api/records/opportunity", {**auth, "Content-Type": "application/json"},
                       bodies),
    }
    return cases, f"{rows:,} rows on {accounts:,} accounts, the rep sees {visible:,} and owns {len(own_accounts):,} accounts"


def _time(label: str, installation, cases: dict[str, Case], engine_env: dict, floor_url: str, rounds: int,
          seconds: int) -> tuple[dict, dict]:
    """Start both servers; per case: check both answer alike, warm up, then alternate rounds.
    Returns ``({case: {"engine": [req/s...], "floor": [...]}}, {case: why not timed})``."""
    results, failed = {}, {}
    with tempfile.TemporaryDirectory(prefix="crm-bench-http-") as tmp:
        work = Path(tmp)
        (work / "engine").mkdir()
        (work / "floor").mkdir()
        engine_env = {**engine_env, "CRM_PACKS": "base", "CRM_INSTANCE_PATH": str(work / "engine"),
                      "CRM_SECRET_KEY": "bench-secret"}
        servers = []
        try:
            servers.append(Server("engine", "crm_platform.web:create_app()", engine_env, work / "engine"))
            servers.append(Server("floor", "bench.http_floor:create_app()",
                                  {"FLOOR_DATABASE_URL": floor_url, "CRM_PACKS": "base"}, work / "floor"))
            engine, floor = servers
            for key, case in cases.items():
                try:
                    _check_same(engine, floor, case, installation)
                except AssertionError as exc:  # reported as a skipped row; the other endpoints still run
                    failed[key] = str(exc).splitlines()[0][:300]
                    _say(f"[{label}] {case.name}: the servers disagree, not timed: {exc}")
                    continue
                for server in servers:  # warm both workers' caches and connection pools
                    for k in range(20):
                        status, out = server.request(case.method, case.path, case.body(k + 1), case.headers)
                        assert 200 <= status < 300, (server.name, case.name, status, out[:300])
                samples = {"engine": [], "floor": []}
                for i in range(rounds):
                    for server in (servers if i % 2 == 0 else servers[::-1]):
                        samples[server.name].append(requests_per_second(server, case, seconds, work))
                results[key] = samples
        finally:
            for server in servers:
                server.stop()
    _say(f"[{label}] checked: both servers answer the same bodies (create: the same rows) for "
         f"{', '.join(cases[k].name for k in results) or 'no endpoint'}")
    return results, failed


NOTES = {
    "get": "GET /api/records/opportunity/<id> as a rep (scope own), with its account's industry and region "
           "(lookups: one query for the account, under the rep's read scope on accounts)",
    "list": "filter[stage]=proposal, sort -created_at, limit 50, as the rep (scope own; the newest fifth of the "
            "rows are early-stage), with the lookups (one query for the page's accounts; every tenth opportunity "
            "is on a colleague's account, whose lookups the rep does not see)",
    "describe": "GET /api/meta/entities/opportunity as the rep; the floor returns bytes encoded at start",
    "create": "POST /api/records/opportunity as the rep, each request on the next of the rep's accounts: values "
              "checked, account reference (rep's read scope), row, the account's two rollups (lock, aggregate, "
              "update) and audit row in one transaction, the record returned with its lookups; no rollup drift after",
}


def _measure(label: str, installation, engine_env: dict, floor_url: str, args) -> list[Row]:
    cases, data = _cases(installation)
    rounds, seconds = (2, 1) if args.quick else (5, 2)
    results, failed = _time(label, installation, cases, engine_env, floor_url, rounds, seconds)
    if "create" in results and (drift := _drift(installation)):
        del results["create"]
        failed["create"] = f"the account rollups drifted during the run: {drift}"
    how = (f" ({'wrk -t1 -c4' if WRK else 'Python client, 4 threads'}, {rounds}×{seconds}s per side; times are "
           "1/throughput; ratio = floor req/s ÷ engine req/s)")
    out = [Row(f"http: {cases[key].name} [{label}]", None, None, None, TARGET, f"NOT TIMED: {why}")
           for key, why in failed.items()]
    for key, samples in results.items():
        e, f = statistics.median(samples["engine"]), statistics.median(samples["floor"])
        ratio = statistics.median(fs / es for es, fs in zip(samples["engine"], samples["floor"], strict=True))
        note = (f"{label}, {data}; " if key == "get" else "") + NOTES[key] + how
        out.append(Row(f"http: {cases[key].name} [{label}]", 1e9 / e, 1e9 / f, ratio, TARGET, note,
                       engine_label=f"{e:,.0f} req/s", floor_label=f"{f:,.0f} req/s"))
    return out


def run(args) -> list[Row]:
    n = 5_000 if args.quick else 100_000
    if not WRK:
        _say("wrk not found: using the Python load generator (install wrk for steadier numbers)")
    rows = []
    cached = cached_sqlite("http", n, _installation, _prepare, _say, GENERATOR_VERSION)
    cached_path = Path(cached.db.url.database)
    cached.db.dispose()
    with tempfile.TemporaryDirectory(prefix="crm-bench-http-db-") as tmp:
        path = Path(tmp) / "crm.db"
        shutil.copyfile(cached_path, path)
        url = f"sqlite:///{path}"
        installation = _installation(url, {})
        try:
            rows += _measure("sqlite", installation, {"CRM_DATABASE_URL": url}, url, args)
        finally:
            installation.db.dispose()
    if args.pg_url:
        rows += run_postgres(args, n)
    else:
        _say("PostgreSQL not used (unreachable or --no-postgres): SQLite only")
    return rows


def run_postgres(args, n: int) -> list[Row]:
    from crm_platform.engine import make_engine
    installation = _installation(args.pg_url, pg_schema(args.pg_url, SCHEMA))
    try:
        installation.migrate()
        _say(f"loading {n:,} rows into PostgreSQL (COPY)")
        _prepare(installation, n)
        url = f"{args.pg_url}?options=-csearch_path%3D{SCHEMA}"
        return _measure("postgresql", installation, {"CRM_DATABASE_URL": url}, url, args)
    finally:
        installation.db.dispose()
        admin = make_engine(args.pg_url)  # free the space now; the database itself is dropped at the end
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        admin.dispose()
