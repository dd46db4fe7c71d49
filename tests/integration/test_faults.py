"""Faults: the database drops connections, the pool is small, an after-commit hook fails.

- After PostgreSQL terminates the pool's connections, the very next request succeeds (no 500 while
  the pool discovers its connections are dead).
- A write never needs a second pool connection inside its own transaction: with a one-connection
  pool, concurrent writes queue for it instead of timing out.
- An ``after_commit`` hook that raises does not turn a committed write into a 500: the write answers
  as usual, the record exists once, and the failure is logged.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles

from crm_platform.engine import make_engine
from crm_platform.installation import Installation, Settings

URL = "/api/records"
HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)


def bearer(client, username: str) -> dict:
    response = client.post("/api/auth/token", json={"username": username, "password": f"{username}-password"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.json['token']}"}


def build_app(installation: Installation):
    from crm_platform.web import create_app
    app = create_app(installation=installation)
    app.config["TESTING"] = True
    return app


# -- PostgreSQL drops the pool's connections ----------------------------------------------------------------
def terminate_app_connections(installation) -> int:
    """What a PostgreSQL restart or failover does to the pool: every other backend of this database is
    terminated, from a separate admin connection. Returns how many were terminated."""
    admin = sa.create_engine(installation.db.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        admin.dispose()


def test_the_first_request_after_postgresql_drops_the_pools_connections_succeeds(client, auth, installation, org,
                                                                                   backend):
    if backend != "postgresql":
        pytest.skip("terminating server backends is a PostgreSQL fault")
    rep = auth("rep")
    created = client.post(f"{URL}/lead", json={"name": "Before"}, headers=rep)
    assert created.status_code == 201
    lead = created.json

    requests = [
        ("read", lambda: client.get(f"{URL}/lead/{lead['id']}", headers=rep), 200),
        ("list", lambda: client.get(f"{URL}/lead", headers=rep), 200),
        ("create", lambda: client.post(f"{URL}/lead", json={"name": "After"}, headers=rep), 201),
        ("update", lambda: client.patch(f"{URL}/lead/{lead['id']}", json={"version": 1, "company": "Acme"},
                                        headers=rep), 200),
        ("login", lambda: client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}), 200),
        ("me", lambda: client.get("/api/me", headers=rep), 200),
    ]
    for name, send, expected in requests:
        assert client.get("/api/me", headers=rep).status_code == 200  # the pool holds a live connection
        assert terminate_app_connections(installation) >= 1, name
        response = send()
        assert response.status_code == expected, (name, response.status_code, response.get_data(as_text=True)[:300])
    assert installation.records(None).get("lead", lead["id"])["company"] == "Acme"
    names = sorted(r["name"] for r in installation.records(None).list("lead")["data"])
    assert names == ["After", "Before"]


# -- a one-connection pool ----------------------------------------------------------------------------------
@pytest.fixture
def small_pool_installation(runtime, database):
    """The base installation (as ``tests/conftest.py::open_installation`` builds it) over a pool of one
    connection that gives up after two seconds."""
    url, options = database
    engine = make_engine(url, pool_size=1, max_overflow=0, pool_timeout=2, **options)
    inst = Installation(Settings(database_url=url), engine, runtime, password_hasher=HASHER)
    inst.migrate()
    accounts = inst.accounts
    accounts.create_team("Head Office")
    accounts.create_team("East", "Head Office")
    accounts.create_team("Shanghai", "East")
    for username, role, team in [("manager", "manager", "East"), ("rep", "rep", "Shanghai"),
                                 ("admin", "admin", "Head Office")]:
        accounts.create_user(username, f"{username}-password", role, team)
    yield inst
    engine.dispose()


def concurrently(n: int, work) -> list:
    barrier = threading.Barrier(n, timeout=60)

    def run(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_manager_writes_on_a_one_connection_pool_do_not_time_out(small_pool_installation):
    inst = small_pool_installation
    app = build_app(inst)
    manager = bearer(app.test_client(), "manager")
    rep_id = inst.accounts.find_actor("rep").id
    account = inst.records(None).create("account", {"name": "Pool Co", "owner": rep_id})

    def create(i):
        response = app.test_client().post(f"{URL}/contact", headers=manager,
                                          json={"last_name": f"Contact {i}", "account": account["id"],
                                                "owner": rep_id})
        return response.status_code, response.get_json(silent=True)

    created = concurrently(10, create)
    assert [status for status, _ in created] == [201] * 10, [(s, b) for s, b in created if s != 201][:3]

    def update(i):
        contact = created[i][1]
        response = app.test_client().patch(f"{URL}/contact/{contact['id']}", headers=manager,
                                           json={"version": contact["version"], "title": f"Title {i}"})
        return response.status_code

    assert concurrently(10, update) == [200] * 10

    def assign_and_read(i):
        client = app.test_client()
        contact = created[i][1]
        listed = client.get(f"{URL}/contact", query_string={"filter[account]": account["id"]}, headers=manager)
        history = client.get(f"{URL}/contact/{contact['id']}/history", headers=manager)
        return listed.status_code, history.status_code

    assert concurrently(10, assign_and_read) == [(200, 200)] * 10
    listed = inst.records(None).list("contact", None)["data"]
    assert sorted(c["title"] for c in listed) == sorted(f"Title {i}" for i in range(10))


# -- an after-commit hook that raises -----------------------------------------------------------------------
class FailingAfterCommit:
    """Sync rules pass; dispatching the async actions after commit fails."""

    def __init__(self):
        self.calls = 0

    def before_write(self, event, connection):
        return None

    def after_commit(self, events):
        self.calls += 1
        raise RuntimeError("after-commit dispatch failed")


def test_an_after_commit_hook_that_raises_does_not_fail_a_committed_write(installation, org, caplog):
    hooks = FailingAfterCommit()
    inst = Installation(installation.settings, installation.db, installation.runtime, hooks=hooks,
                        password_hasher=installation.password_hasher)
    app = build_app(inst)
    client = app.test_client()
    rep, admin = bearer(client, "rep"), bearer(client, "admin")
    system = installation.records(None)

    with caplog.at_level(logging.WARNING):
        created = client.post(f"{URL}/lead", json={"name": "Hooked", "mobile": "13912345678"}, headers=rep)
        assert created.status_code == 201, created.get_data(as_text=True)[:300]
        lead = created.json
        assert [r["id"] for r in system.list("lead")["data"]] == [lead["id"]]  # exactly once

        updated = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 1, "company": "Acme"}, headers=rep)
        assert updated.status_code == 200 and updated.json["version"] == 2, updated.get_data(as_text=True)[:300]
        released = client.post(f"{URL}/lead/{lead['id']}/release", headers=rep)
        assert released.status_code == 200 and released.json["owner"] is None
        claimed = client.post(f"{URL}/lead/{lead['id']}/claim", headers=rep)
        assert claimed.status_code == 200 and claimed.json["owner"] == org["rep"].id
        assert system.get("lead", lead["id"])["version"] == 4

        # the duplicate rule sees the committed lead: a retry is a 409, not a second lead
        again = client.post(f"{URL}/lead", json={"name": "Hooked", "mobile": "13912345678"}, headers=rep)
        assert again.status_code == 409 and again.json["error"]["code"] == "duplicate"

        deleted = client.delete(f"{URL}/lead/{lead['id']}", headers=admin)
        assert deleted.status_code == 204, deleted.get_data(as_text=True)[:300]
        assert client.get(f"{URL}/lead/{lead['id']}", headers=admin).status_code == 404
        audit = installation.runtime.tables["audit"]
        with installation.db.connect() as conn:
            actions = conn.scalars(sa.select(audit.c.action).where(audit.c.record_id == lead["id"])
                                   .order_by(audit.c.id)).all()
        assert actions == ["create", "update", "release", "claim", "delete"]

    assert hooks.calls == 5  # create, update, release, claim, delete: each committed, each dispatched
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING and (
        (r.exc_info and r.exc_info[0] is RuntimeError) or "after-commit dispatch failed" in r.getMessage())]
    assert len(failures) >= 5, [(r.name, r.levelname, r.getMessage()) for r in caplog.records][-10:]
