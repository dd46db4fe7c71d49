"""Shared fixtures: one fresh installation per test, on SQLite and (when reachable) PostgreSQL.

PostgreSQL gets a fresh database per test run (``crm_test_<random>``), and each test its own schema
inside it; both are dropped at the end. Whether PostgreSQL was used is printed in the report header.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles

from crm_platform.engine import compile_runtime, make_engine
from crm_platform.installation import Installation, Settings
from crm_platform.metadata import load_catalog

PG_ADMIN_URL = os.environ.get("CRM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        engine = make_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: not available here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


PG_UNAVAILABLE = _postgres_reachable()


def pytest_report_header(config):
    if PG_UNAVAILABLE:
        return [f"PostgreSQL: NOT reachable at {PG_ADMIN_URL} ({PG_UNAVAILABLE}); "
                "integration tests run on SQLite only and the PostgreSQL variants are SKIPPED"]
    return [f"PostgreSQL: reachable at {PG_ADMIN_URL}; integration tests run on SQLite AND PostgreSQL"]


@pytest.fixture(scope="session")
def catalog():
    return load_catalog("base")


@pytest.fixture(scope="session")
def runtime(catalog):
    return compile_runtime(catalog)


@pytest.fixture(scope="session")
def pg_database(worker_id):
    """A fresh PostgreSQL database for this test run (and xdist worker), dropped at the end."""
    if PG_UNAVAILABLE:
        pytest.skip(f"PostgreSQL not reachable: {PG_UNAVAILABLE}")
    name = f"crm_test_{secrets.token_hex(4)}_{worker_id}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def worker_id(request):
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def database(backend, tmp_path, request):
    """(url, engine options) for an empty database on the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}", {}
        return
    url = request.getfixturevalue("pg_database")
    schema = f"t_{secrets.token_hex(6)}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield url, {"connect_args": {"options": f"-csearch_path={schema}"}}
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


#: argon2's own cheapest profile: tests create many users; production keeps the library's default cost.
FAST_HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)


def open_installation(runtime, database) -> Installation:
    url, options = database
    inst = Installation(Settings(database_url=url), make_engine(url, **options), runtime, password_hasher=FAST_HASHER)
    inst.migrate()
    return inst


MACHINERY = Path(__file__).resolve().parent / "fixtures" / "packs" / "machinery"


@pytest.fixture(scope="session")
def machinery_runtime():
    """The machinery fixture pack (extends base): definitions that span records."""
    return compile_runtime(load_catalog([str(MACHINERY)]))


@pytest.fixture
def install(database):
    """``install(runtime)``: a compiled catalog migrated into a fresh database of the backend under
    test (a new file on SQLite, a new schema on PostgreSQL); disposed of after the test."""
    made = []

    def install_(runtime):
        made.append(open_installation(runtime, database))
        return made[-1]
    yield install_
    for inst in made:
        inst.db.dispose()


@pytest.fixture
def machinery(machinery_runtime, install):
    """A fresh installation of the machinery fixture pack."""
    return install(machinery_runtime)


@pytest.fixture(scope="session")
def pg_shared_schema(pg_database, runtime):
    """One PostgreSQL schema per run, migrated once for the base runtime; tests truncate it after use."""
    schema = f"shared_{secrets.token_hex(4)}"
    admin = make_engine(pg_database)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    database = (pg_database, {"connect_args": {"options": f"-csearch_path={schema}"}})
    open_installation(runtime, database).db.dispose()
    yield database
    admin.dispose()


@pytest.fixture
def installation(runtime, backend, request):
    """A migrated installation of the base pack with no data (fresh file on SQLite; a truncated
    shared schema on PostgreSQL, which keeps per-test setup fast)."""
    if backend == "sqlite":
        inst = open_installation(runtime, request.getfixturevalue("database"))
        yield inst
        inst.db.dispose()
        return
    url, options = request.getfixturevalue("pg_shared_schema")
    inst = Installation(Settings(database_url=url), make_engine(url, **options), runtime, password_hasher=FAST_HASHER)
    yield inst
    names = ", ".join(f'"{t.name}"' for t in runtime.metadata.sorted_tables)
    with inst.db.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    inst.db.dispose()


@pytest.fixture
def org(installation):
    """A small org: Head Office → East → {Shanghai, Hangzhou}; one user per role. Returns actors by username."""
    accounts = installation.accounts
    for name, parent in [("Head Office", None), ("East", "Head Office"), ("Shanghai", "East"), ("Hangzhou", "East")]:
        accounts.create_team(name, parent)
    users = {"admin": ("admin", "Head Office"), "manager": ("manager", "East"),
             "supervisor": ("supervisor", "Shanghai"), "rep": ("rep", "Shanghai"), "rep2": ("rep", "Hangzhou"),
             "marketing": ("marketing", "Head Office")}
    actors = {}
    for username, (role, team) in users.items():
        user_id = accounts.create_user(username, f"{username}-password", role, team)
        actors[username] = accounts.actor(user_id)
    return actors


@pytest.fixture
def app(installation):
    from crm_platform.web import create_app
    app = create_app(installation=installation)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(client, org):
    """``auth("rep")`` → headers with a bearer token for that demo user."""
    cache = {}

    def headers(username: str) -> dict:
        if username not in cache:
            response = client.post("/api/auth/token", json={"username": username, "password": f"{username}-password"})
            assert response.status_code == 200, response.json
            cache[username] = {"Authorization": f"Bearer {response.json['token']}"}
        return cache[username]
    return headers
