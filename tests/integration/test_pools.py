"""Public pool and ownership changes over HTTP: claim, release, assign — and concurrent claims.

Org (conftest's ``org`` plus two users): Head Office → East → {Shanghai, Hangzhou}, and North under Head
Office. rep, rep3 and supervisor are in Shanghai, rep2 in Hangzhou, manager in East, north_rep in North.
"""

from __future__ import annotations

import threading

import pytest

from crm_platform.engine import Conflict
from crm_platform.engine.ownership import OwnershipMixin

URL = "/api/records"
POOLED = ["lead", "account"]


@pytest.fixture
def people(installation, org):
    """conftest's org, plus rep3 (Shanghai, rep's team) and north_rep in a team North outside East."""
    accounts = installation.accounts
    accounts.create_team("North", "Head Office")
    actors = dict(org)
    for username, team in [("rep3", "Shanghai"), ("north_rep", "North")]:
        actors[username] = accounts.actor(accounts.create_user(username, f"{username}-password", "rep", team))
    return actors


@pytest.fixture
def system(installation):
    return installation.records(None)


_names = iter(range(10**6))


def make(system, entity: str, owner=None, **fields) -> dict:
    """A lead or account created by the system, owned by ``owner`` (an Actor) or in the pool (None)."""
    name = f"{entity} {next(_names)}"
    return system.create(entity, {"name": name, **fields, "owner": owner.id if owner else None})


def act(client, headers, entity: str, record_id: str, verb: str, body=None):
    return client.post(f"{URL}/{entity}/{record_id}/{verb}", json=body if body is not None else {}, headers=headers)


def owner_of(system, entity: str, record_id: str):
    record = system.get(entity, record_id)
    return record["owner"], record["team"]


def listed(client, headers, entity: str) -> set[str]:
    response = client.get(f"{URL}/{entity}?limit=200", headers=headers)
    assert response.status_code == 200, response.json
    return {r["id"] for r in response.json["data"]}


def error(response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.json)
    assert response.json["error"]["code"] == code


# -- seeing the pool ------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", POOLED)
def test_pool_records_are_listed_and_readable_by_reps_private_ones_are_not(client, auth, people, system, entity):
    pooled = make(system, entity)
    private = make(system, entity, people["rep2"])
    for username in ("rep", "rep2"):
        response = client.get(f"{URL}/{entity}/{pooled['id']}", headers=auth(username))
        assert response.status_code == 200
        assert (response.json["owner"], response.json["team"]) == (None, None)
        assert pooled["id"] in listed(client, auth(username), entity)
    assert private["id"] not in listed(client, auth("rep"), entity)
    error(client.get(f"{URL}/{entity}/{private['id']}", headers=auth("rep")), 404, "not_found")


# -- claim ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", POOLED)
def test_a_claim_makes_the_caller_owner_in_their_team_and_is_audited(client, auth, people, system, entity):
    record = make(system, entity)
    rep = people["rep"]

    response = act(client, auth("rep"), entity, record["id"], "claim")

    assert response.status_code == 200, response.json
    assert (response.json["owner"], response.json["team"]) == (rep.id, rep.team)
    assert response.json["version"] == record["version"] + 1
    assert owner_of(system, entity, record["id"]) == (rep.id, rep.team)
    assert record["id"] in listed(client, auth("rep"), entity)
    history = client.get(f"{URL}/{entity}/{record['id']}/history", headers=auth("rep")).json["data"]
    last = history[-1]
    assert (last["action"], last["by"]["username"], last["version"]) == ("claim", "rep", record["version"] + 1)
    assert sorted((c["field"], c["old"], c["new"]) for c in last["changes"]) == [
        ("owner", None, rep.id), ("team", None, rep.team)]


@pytest.mark.parametrize("entity", POOLED)
def test_a_claimed_record_cannot_be_claimed_again(client, auth, people, system, entity):
    record = make(system, entity)
    assert act(client, auth("rep"), entity, record["id"], "claim").status_code == 200
    mine = (people["rep"].id, people["rep"].team)

    # rep2 may no longer see it (it left the pool), but saw it in the pool: told someone else claimed it
    error(act(client, auth("rep2"), entity, record["id"], "claim"), 409, "conflict")
    assert client.get(f"{URL}/{entity}/{record['id']}", headers=auth("rep2")).status_code == 404
    # those who still see it are told it is taken too
    error(act(client, auth("rep"), entity, record["id"], "claim"), 409, "conflict")
    error(act(client, auth("manager"), entity, record["id"], "claim"), 409, "conflict")
    error(act(client, auth("admin"), entity, record["id"], "claim"), 409, "conflict")
    assert owner_of(system, entity, record["id"]) == mine
    assert [e["action"] for e in system.history(entity, record["id"])] == ["create", "claim"]


def test_a_record_that_never_was_in_the_pool_stays_invisible_to_a_claim(client, auth, people, system):
    """The 409 for a lost claim says nothing about records that were never pooled: those stay 404."""
    record = make(system, "lead")
    assert act(client, auth("rep"), "lead", record["id"], "claim").status_code == 200
    system.release("lead", record["id"])
    system.assign("lead", record["id"], people["rep"].id)
    error(act(client, auth("rep2"), "lead", record["id"], "claim"), 404, "not_found")


def test_a_role_without_pool_access_may_not_claim(client, auth, people, system):
    record = make(system, "account")  # marketing reads every account, but has no pool

    error(act(client, auth("marketing"), "account", record["id"], "claim"), 403, "forbidden")
    assert owner_of(system, "account", record["id"]) == (None, None)


def test_claim_release_and_assign_on_an_entity_without_a_pool_are_400(client, auth, people, system):
    deal_account = make(system, "account", people["rep"])
    deal = system.create("opportunity", {"name": "Deal", "account": deal_account["id"],
                                         "expected_close_date": "2026-06-30", "owner": people["rep"].id})
    for verb in ("claim", "release"):
        error(act(client, auth("rep"), "opportunity", deal["id"], verb), 400, "malformed")
    error(act(client, auth("admin"), "opportunity", deal["id"], "assign", {"owner": None}), 400, "malformed")
    assert owner_of(system, "opportunity", deal["id"]) == (people["rep"].id, people["rep"].team)


# -- release --------------------------------------------------------------------------------------
@pytest.mark.parametrize("entity", POOLED)
def test_the_owner_releases_a_record_back_to_the_pool(client, auth, people, system, entity):
    record = make(system, entity)
    assert act(client, auth("rep"), entity, record["id"], "claim").status_code == 200
    assert record["id"] not in listed(client, auth("rep2"), entity)

    response = act(client, auth("rep"), entity, record["id"], "release")

    assert response.status_code == 200, response.json
    assert (response.json["owner"], response.json["team"]) == (None, None)
    assert owner_of(system, entity, record["id"]) == (None, None)
    assert record["id"] in listed(client, auth("rep2"), entity)
    assert [e["action"] for e in system.history(entity, record["id"])] == ["create", "claim", "release"]
    assert act(client, auth("rep2"), entity, record["id"], "claim").json["owner"] == people["rep2"].id


def test_a_rep_cannot_release_someone_elses_record(client, auth, people, system):
    lead = make(system, "lead", people["rep2"])
    account = make(system, "account", people["rep"])

    error(act(client, auth("rep"), "lead", lead["id"], "release"), 404, "not_found")  # not visible to rep
    error(act(client, auth("rep3"), "account", account["id"], "release"), 404, "not_found")  # same team, still not
    # marketing reads every account (so: 403, not 404) but neither owns nor may assign it
    error(act(client, auth("marketing"), "account", account["id"], "release"), 403, "forbidden")
    assert owner_of(system, "lead", lead["id"]) == (people["rep2"].id, people["rep2"].team)
    assert owner_of(system, "account", account["id"]) == (people["rep"].id, people["rep"].team)


def test_someone_who_may_assign_a_record_may_release_it(client, auth, people, system):
    lead = make(system, "lead", people["rep3"])

    response = act(client, auth("supervisor"), "lead", lead["id"], "release")

    assert response.status_code == 200, response.json
    assert owner_of(system, "lead", lead["id"]) == (None, None)


# -- assign ---------------------------------------------------------------------------------------
def test_a_supervisor_assigns_within_their_team_only(client, auth, people, system):
    lead = make(system, "lead", people["rep"])
    rep3, rep2 = people["rep3"], people["rep2"]
    supervisor = auth("supervisor")

    response = act(client, supervisor, "lead", lead["id"], "assign", {"owner": rep3.id})
    assert response.status_code == 200, response.json
    assert (response.json["owner"], response.json["team"]) == (rep3.id, rep3.team)
    assert system.history("lead", lead["id"])[-1]["action"] == "assign"

    error(act(client, supervisor, "lead", lead["id"], "assign", {"owner": rep2.id}), 403, "forbidden")
    assert owner_of(system, "lead", lead["id"]) == (rep3.id, rep3.team)
    hangzhou = make(system, "lead", rep2)  # outside the supervisor's team: not even visible
    error(act(client, supervisor, "lead", hangzhou["id"], "assign", {"owner": rep3.id}), 404, "not_found")
    assert owner_of(system, "lead", hangzhou["id"]) == (rep2.id, rep2.team)

    to_pool = act(client, supervisor, "lead", lead["id"], "assign", {"owner": None})
    assert (to_pool.status_code, to_pool.json["owner"], to_pool.json["team"]) == (200, None, None)


def test_a_manager_assigns_within_their_subtree_only(client, auth, people, system):
    account = make(system, "account", people["rep"])
    rep2, north = people["rep2"], people["north_rep"]
    manager = auth("manager")

    response = act(client, manager, "account", account["id"], "assign", {"owner": rep2.id})
    assert response.status_code == 200, response.json
    assert (response.json["owner"], response.json["team"]) == (rep2.id, rep2.team)

    error(act(client, manager, "account", account["id"], "assign", {"owner": north.id}), 403, "forbidden")
    assert owner_of(system, "account", account["id"]) == (rep2.id, rep2.team)
    northern = make(system, "account", north)
    error(act(client, manager, "account", northern["id"], "assign", {"owner": rep2.id}), 404, "not_found")
    error(act(client, manager, "account", account["id"], "assign", {"owner": "no-such-user"}), 404, "not_found")


def test_reps_may_not_assign_nor_give_records_away_by_setting_the_owner(client, auth, people, system):
    lead = make(system, "lead", people["rep"])
    rep = auth("rep")

    error(act(client, rep, "lead", lead["id"], "assign", {"owner": people["rep3"].id}), 403, "forbidden")
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": lead["version"], "owner": people["rep3"].id},
                            headers=rep)
    error(response, 403, "forbidden")
    assert list(response.json["error"]["fields"]) == ["owner"]
    assert owner_of(system, "lead", lead["id"]) == (people["rep"].id, people["rep"].team)
    created = client.post(f"{URL}/lead", json={"name": "For rep3", "owner": people["rep3"].id}, headers=rep)
    error(created, 403, "forbidden")
    assert list(created.json["error"]["fields"]) == ["owner"]
    assert system.list("lead")["data"] == [system.get("lead", lead["id"])]


def test_setting_the_owner_is_assigning_and_follows_the_assign_scope(client, auth, people, system):
    supervisor = auth("supervisor")
    created = client.post(f"{URL}/lead", json={"name": "For rep3", "owner": people["rep3"].id}, headers=supervisor)
    assert created.status_code == 201, created.json
    assert (created.json["owner"], created.json["team"]) == (people["rep3"].id, people["rep3"].team)
    refused = client.post(f"{URL}/lead", json={"name": "For rep2", "owner": people["rep2"].id}, headers=supervisor)
    error(refused, 403, "forbidden")
    assert list(refused.json["error"]["fields"]) == ["owner"]


# -- creating into the pool -----------------------------------------------------------------------
def test_marketing_creates_leads_into_the_pool_and_reps_claim_them(client, auth, people, system):
    response = client.post(f"{URL}/lead", json={"name": "Fair visitor", "owner": None}, headers=auth("marketing"))

    assert response.status_code == 201, response.json
    lead = response.json
    assert (lead["owner"], lead["team"]) == (None, None)
    assert lead["id"] in listed(client, auth("rep"), "lead") and lead["id"] in listed(client, auth("rep2"), "lead")
    assert act(client, auth("rep2"), "lead", lead["id"], "claim").json["owner"] == people["rep2"].id
    own = client.post(f"{URL}/lead", json={"name": "Own lead"}, headers=auth("marketing")).json
    assert own["owner"] == people["marketing"].id


def test_a_rep_may_put_a_new_lead_into_the_pool(client, auth, people):
    response = client.post(f"{URL}/lead", json={"name": "Not mine", "owner": None}, headers=auth("rep"))

    assert response.status_code == 201, response.json
    assert (response.json["owner"], response.json["team"]) == (None, None)


# -- concurrent claims ----------------------------------------------------------------------------
@pytest.fixture
def writes_in_lockstep(monkeypatch):
    """Hold every ownership write until two requests have passed their checks: the two claims then
    really race on the owner column (without this, one usually finishes before the other starts)."""
    barrier = threading.Barrier(2, timeout=5)
    original = OwnershipMixin._set_owner

    def set_owner(self, *args, **kwargs):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:  # the other request never got here: go on alone
            pass
        return original(self, *args, **kwargs)
    monkeypatch.setattr(OwnershipMixin, "_set_owner", set_owner)
    return barrier


def _race(run_a, run_b):
    results: list = [None, None]
    start = threading.Barrier(2, timeout=10)

    def worker(index, run):
        start.wait()
        try:
            results[index] = run()
        except Exception as exc:  # noqa: BLE001 - the result under test
            results[index] = exc
    threads = [threading.Thread(target=worker, args=(i, run)) for i, run in enumerate((run_a, run_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a claim hung"
    return results


@pytest.mark.parametrize("entity", POOLED)
def test_two_simultaneous_claims_over_http_have_exactly_one_winner(app, auth, people, system, writes_in_lockstep,
                                                                   entity):
    headers = {"rep": auth("rep"), "rep2": auth("rep2")}
    clients = {name: app.test_client() for name in headers}
    for _ in range(20):
        writes_in_lockstep.reset()
        record = make(system, entity)

        def claim(name):
            return lambda: act(clients[name], headers[name], entity, record["id"], "claim")
        results = dict(zip(headers, _race(claim("rep"), claim("rep2"))))

        statuses = sorted(r.status_code for r in results.values())
        assert statuses == [200, 409], [(n, r.status_code, r.json) for n, r in results.items()]
        [winner] = [n for n, r in results.items() if r.status_code == 200]
        [loser] = [r for r in results.values() if r.status_code == 409]
        assert loser.json["error"]["code"] == "conflict"
        assert owner_of(system, entity, record["id"]) == (people[winner].id, people[winner].team)
        assert [e["action"] for e in system.history(entity, record["id"])] == ["create", "claim"]


def test_two_simultaneous_claims_in_the_record_service_have_exactly_one_winner(installation, people, system,
                                                                              writes_in_lockstep):
    services = {name: installation.records(people[name]) for name in ("rep", "rep2")}
    for _ in range(20):
        writes_in_lockstep.reset()
        record = make(system, "lead")
        results = dict(zip(services, _race(*(lambda s=s: s.claim("lead", record["id"]) for s in services.values()))))

        winners = [n for n, r in results.items() if isinstance(r, dict)]
        losers = [r for r in results.values() if not isinstance(r, dict)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert type(losers[0]) is Conflict, repr(losers[0])
        assert results[winners[0]]["owner"] == people[winners[0]].id
        assert owner_of(system, "lead", record["id"]) == (people[winners[0]].id, people[winners[0]].team)


def test_simultaneous_claims_without_lockstep_never_make_two_owners(app, auth, people, system):
    """The plain race (no help with timing): one winner; the other is told it is taken (409) — or, if it
    only looked after the winner had committed, that the record is gone from its view (404)."""
    headers = {"rep": auth("rep"), "rep2": auth("rep2")}
    clients = {name: app.test_client() for name in headers}
    for _ in range(20):
        record = make(system, "lead")

        def claim(name):
            return lambda: act(clients[name], headers[name], "lead", record["id"], "claim")
        results = dict(zip(headers, _race(claim("rep"), claim("rep2"))))
        statuses = sorted(r.status_code for r in results.values())
        assert statuses in ([200, 404], [200, 409]), [(n, r.status_code, r.json) for n, r in results.items()]
        [winner] = [n for n, r in results.items() if r.status_code == 200]
        assert owner_of(system, "lead", record["id"]) == (people[winner].id, people[winner].team)
        assert [e["action"] for e in system.history("lead", record["id"])] == ["create", "claim"]
