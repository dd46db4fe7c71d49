"""Races: twenty requests released together by a barrier, on both databases.

Each test drives one app (built over the ``installation`` fixture) from twenty threads, each with its
own test client, and runs a few rounds so that a race that is only sometimes lost still shows. What
must hold whatever the interleaving:

- duplicate rules and unique fields: exactly one create wins (201), the rest get 409 ``duplicate``;
- login throttling: at most five wrong passwords for one username are evaluated (401), the rest 429;
- deletes: exactly one 204 and one ``delete`` audit entry; the rest 404 (or 409 with a version);
- claims from the public pool: exactly one 200, the rest 409 ``conflict``.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

URL = "/api/records"
THREADS = 20
ROUNDS = 3


def race(app, request, n: int = THREADS) -> list[tuple[int, dict | None]]:
    """``request(client, i)`` from ``n`` threads at once (each with its own client), released together
    by a barrier; returns each answer as (status, JSON body or None)."""
    clients = [app.test_client() for _ in range(n)]
    barrier = threading.Barrier(n, timeout=60)

    def run(i: int):
        barrier.wait()
        response = request(clients[i], i)
        return response.status_code, (response.get_json(silent=True) if response.is_json else None)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def statuses(answers) -> Counter:
    return Counter(status for status, _ in answers)


def codes(answers, status: int) -> set[str]:
    return {body["error"]["code"] for s, body in answers if s == status}


def bearer(client, username: str, password: str, environ=None) -> dict:
    response = client.post("/api/auth/token", json={"username": username, "password": password},
                           environ_base=environ or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.json['token']}"}


def audit_actions(installation, record_id: str) -> list[str]:
    audit = installation.runtime.tables["audit"]
    with installation.db.connect() as conn:
        return [row.action for row in conn.execute(sa.select(audit.c.action).where(audit.c.record_id == record_id)
                                                   .order_by(audit.c.id))]


def rows(installation, entity: str, **where) -> int:
    table = installation.runtime.entity(entity).table
    with installation.db.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table)
                           .where(*(table.c[k] == v for k, v in where.items())))


# -- duplicate rules and unique fields ----------------------------------------------------------------------
CASES = {
    "lead duplicate rule on mobile": ("lead", lambda i, r: {"name": f"Racer {i}", "mobile": f"1390000{r:04d}"},
                                      "mobile"),
    "lead duplicate rule on email": ("lead", lambda i, r: {"name": f"Racer {i}", "email": f"race{r}@example.com"},
                                     "email"),
    "account unique name": ("account", lambda i, r: {"name": f"Race Co {r}"}, "name"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_twenty_simultaneous_duplicate_creates_store_exactly_one_record(app, auth, installation, case):
    entity, body, field = CASES[case]
    admin = auth("admin")
    for round_ in range(ROUNDS):
        answers = race(app, lambda client, i: client.post(f"{URL}/{entity}", json=body(i, round_), headers=admin))
        assert statuses(answers) == {201: 1, 409: THREADS - 1}, (round_, statuses(answers), answers[:3])
        assert codes(answers, 409) == {"duplicate"}, (round_, codes(answers, 409))
        value = body(0, round_)[field]
        assert rows(installation, entity, **{field: value}) == 1, (round_, value)
        winner = next(b for s, b in answers if s == 201)
        assert all(b["error"].get("existing_id") in (None, winner["id"]) for s, b in answers if s == 409)
        assert audit_actions(installation, winner["id"]) == ["create"]


def test_racing_creates_with_different_values_all_succeed(app, auth, installation):
    """Control: the race above is about the shared value, not about creating at the same time."""
    admin = auth("admin")
    answers = race(app, lambda client, i: client.post(f"{URL}/lead", json={"name": f"Solo {i}",
                                                                            "mobile": f"1370000{i:04d}"},
                                                      headers=admin))
    assert statuses(answers) == {201: THREADS}, answers[:3]
    assert rows(installation, "lead") == THREADS


# -- login throttling ---------------------------------------------------------------------------------------
def test_twenty_parallel_wrong_passwords_evaluate_at_most_five(app, installation, org):
    for round_ in range(ROUNDS):
        username = f"victim_{round_}_{secrets.token_hex(3)}"
        installation.accounts.create_user(username, "the-right-password", "rep", "Shanghai")
        # a fresh address each round, so only the per-username lock-out is being raced
        environ = {"REMOTE_ADDR": f"10.{round_}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"}
        answers = race(app, lambda client, i: client.post(
            "/api/auth/token", json={"username": username, "password": f"wrong-{i}"}, environ_base=environ))
        counted = statuses(answers)
        assert set(counted) <= {401, 429}, (round_, counted)
        assert 1 <= counted[401] <= 5 and counted[401] + counted[429] == THREADS, (round_, counted)
        assert codes(answers, 401) == {"unauthorized"} and codes(answers, 429) == {"rate_limited"}
        # locked: even the right password is refused now
        locked = app.test_client().post("/api/auth/token", json={"username": username,
                                                                 "password": "the-right-password"},
                                        environ_base=environ)
        assert locked.status_code == 429 and locked.json["error"]["code"] == "rate_limited"


# -- deletes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_version", [False, True], ids=["without version", "with If-Match"])
def test_twenty_parallel_deletes_of_one_record_delete_it_once(app, auth, installation, org, with_version):
    admin = auth("admin")
    system = installation.records(None)
    for round_ in range(ROUNDS):
        lead = system.create("lead", {"name": f"Doomed {round_}", "owner": org["rep"].id})
        headers = {**admin, "If-Match": f'"{lead["version"]}"'} if with_version else admin
        answers = race(app, lambda client, i: client.delete(f"{URL}/lead/{lead['id']}", headers=headers))
        counted = statuses(answers)
        losers = {404, 409} if with_version else {404}
        assert counted[204] == 1 and set(counted) - {204} <= losers, (round_, counted)
        assert codes(answers, 404) <= {"not_found"} and codes(answers, 409) <= {"stale_version", "conflict"}
        assert audit_actions(installation, lead["id"]) == ["create", "delete"], round_
        assert rows(installation, "lead", id=lead["id"]) == 0
        assert client_get(app, admin, f"{URL}/lead/{lead['id']}") == 404


def client_get(app, headers, path) -> int:
    return app.test_client().get(path, headers=headers).status_code


# -- claims -------------------------------------------------------------------------------------------------
def test_twenty_reps_claiming_one_pooled_lead_get_one_winner_and_nineteen_409s(app, installation, org):
    reps = []
    for i in range(THREADS):
        user_id = installation.accounts.create_user(f"claimer{i}", f"claimer{i}-password", "rep",
                                                    "Shanghai" if i % 2 else "Hangzhou")
        reps.append((user_id, bearer(app.test_client(), f"claimer{i}", f"claimer{i}-password")))
    system = installation.records(None)
    for round_ in range(ROUNDS):
        lead = system.create("lead", {"name": f"Pooled {round_}"})
        assert lead["owner"] is None
        answers = race(app, lambda client, i: client.post(f"{URL}/lead/{lead['id']}/claim", headers=reps[i][1]))
        assert statuses(answers) == {200: 1, 409: THREADS - 1}, (round_, statuses(answers))
        assert codes(answers, 409) == {"conflict"}, codes(answers, 409)
        winner = next(i for i, (s, _) in enumerate(answers) if s == 200)
        assert answers[winner][1]["owner"] == reps[winner][0]
        assert system.get("lead", lead["id"])["owner"] == reps[winner][0]
        assert audit_actions(installation, lead["id"]) == ["create", "claim"], round_
        # a loser cannot see the winner's lead afterwards (it is in the winner's private pool)
        loser = (winner + 1) % THREADS
        assert client_get(app, reps[loser][1], f"{URL}/lead/{lead['id']}") == 404
