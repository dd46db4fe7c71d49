"""Record- and field-level permissions through the HTTP API, as a data-driven matrix.

Every base role × every base entity × action (read, list, update, delete, create) × situation (whose
record it is) → an expected status. The expectation is computed by a small oracle in this file that reads
``definitions/base/roles/*.json`` and ``definitions/base/entities/*.json`` directly with ``json`` (not
through ``crm_platform``), so changing a role file changes what this test expects.

Situations, relative to the caller:
- ``own``           the caller owns the record
- ``same_team``     a colleague in the caller's team owns it
- ``other_team``    rep2 in Hangzhou owns it (in the subtree of East and Head Office; a sibling of Shanghai)
- ``other_region``  a rep in team North (under Head Office, outside East) owns it
- ``pool``          no owner: the public pool (pooled entities only)
- ``own_closed``    the caller owns it and it is in a closed stage (staged entities; ``readonly_if`` territory)
- ``any``           products have no owner; any scope but ``none`` covers every product

A detail entity (one with a ``detail`` reference, e.g. a contract's payments) has no owner of its own: its
situations are its parent's (a payment of the caller's closed contract is ``own_closed``), and it is also
created in each of them, since creating a detail is a write on its parent.

One org and one set of records is built per backend per test module (per xdist worker); tests that
change or delete records work on fresh records created for them, and remove what they create.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles

from crm_platform.engine import ListQuery, NotFound, make_engine
from crm_platform.installation import Installation, Settings

BASE = Path(__file__).resolve().parents[2] / "definitions" / "base"
ROLE_DOCS = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((BASE / "roles").glob("*.json"))}
ENTITY_DOCS = {p.stem: json.loads(p.read_text(encoding="utf-8"))
               for p in sorted((BASE / "entities").glob("*.json"))}
ROLES = sorted(ROLE_DOCS)
ENTITIES = sorted(ENTITY_DOCS)
URL = "/api/records"

# -- the org ------------------------------------------------------------------------------------
TEAMS = {"Head Office": None, "East": "Head Office", "Shanghai": "East", "Hangzhou": "East", "North": "Head Office"}
#: username → (role, team). The first five are the callers, one per base role.
USERS = {"admin": ("admin", "Head Office"), "manager": ("manager", "East"), "supervisor": ("supervisor", "Shanghai"),
         "rep": ("rep", "Shanghai"), "marketing": ("marketing", "Head Office"),
         "rep2": ("rep", "Hangzhou"), "rep3": ("rep", "Shanghai"), "ho_mate": ("rep", "Head Office"),
         "east_mate": ("rep", "East"), "north_rep": ("rep", "North")}
CALLER = {role: next(u for u, (r, _) in USERS.items() if r == role) for role in ROLES}
TEAMMATE = {"Head Office": "ho_mate", "East": "east_mate", "Shanghai": "rep3"}
#: A stage per staged entity that closes the record (the kind of stage ``readonly_if`` rules name).
CLOSED = {"lead": {"stage": "converted"}, "opportunity": {"stage": "won", "amount": 5000},
          "contract": {"stage": "completed"}, "tender": {"stage": "won"}}
#: A plain field per entity that an update writes.
EDIT = {"lead": ("company", "Edited Co"), "account": ("description", "edited"), "contact": ("notes", "edited"),
        "opportunity": ("next_step", "edited"), "activity": ("outcome", "edited"), "contract": ("notes", "edited"),
        "payment": ("notes", "edited"), "tender": ("keywords", "edited"), "product": ("description", "edited")}


def owned(entity: str) -> bool:
    return bool(ENTITY_DOCS[entity].get("owned", False))


def pooled(entity: str) -> bool:
    return bool(ENTITY_DOCS[entity].get("pooled", False))


def staged(entity: str) -> bool:
    return bool(ENTITY_DOCS[entity].get("stages"))


def master(entity: str) -> tuple[str, str] | None:
    """(reference field, parent entity) if ``entity`` is a detail: read from its ``detail`` reference, so a
    new detail entity is covered without naming it here."""
    return next(((f["name"], f["target"]) for f in ENTITY_DOCS[entity]["fields"]
                 if f.get("type") == "reference" and f.get("detail")), None)


def root(entity: str) -> str:
    """The entity whose records decide a record's situation: the top of its master-detail chain."""
    link = master(entity)
    return root(link[1]) if link else entity


def situations(entity: str) -> list[str]:
    if master(entity):
        return situations(root(entity))
    if not owned(entity):
        return ["any"]
    names = ["own", "same_team", "other_team", "other_region"]
    if pooled(entity):
        names.append("pool")
    if entity in CLOSED:
        names.append("own_closed")
    return names


def situation_owner(caller: str, situation: str) -> str | None:
    return {"new": caller, "own": caller, "own_closed": caller, "same_team": TEAMMATE[USERS[caller][1]],
            "other_team": "rep2", "other_region": "north_rep", "pool": None, "any": None}[situation]


def situation_key(entity: str, caller: str, situation: str) -> tuple[str | None, bool]:
    """(owner, closed) of the record in ``situation`` relative to ``caller``; for a detail, of its parent."""
    owner = situation_owner(caller, situation) if owned(root(entity)) else None
    return owner, situation == "own_closed"


def home(entity: str) -> str:
    """The situation of the caller's own records (``any`` where nobody owns them)."""
    return "own" if owned(root(entity)) else "any"


# -- the oracle: the role files, read independently ----------------------------------------------
def subtree(team: str | None) -> set[str]:
    if team is None:
        return set()
    result, frontier = {team}, {team}
    while frontier:
        frontier = {t for t, parent in TEAMS.items() if parent in frontier} - result
        result |= frontier
    return result


def grant(role: str, entity: str) -> dict:
    entities = ROLE_DOCS[role]["entities"]
    return entities.get(entity) or entities.get("*") or {}


def scope(role: str, entity: str, action: str) -> str:
    return grant(role, entity).get("actions", {}).get(action, "none")


def has_pool(role: str, entity: str) -> bool:
    return bool(grant(role, entity).get("pool")) and pooled(entity)


def field_rules(role: str, entity: str) -> dict[str, str]:
    return grant(role, entity).get("fields", {})


class _Names(dict):
    def __missing__(self, key):
        return None


FUNCTIONS = {"is_blank": lambda v: v is None or (isinstance(v, str) and not v.strip()),
             "coalesce": lambda *vs: next((v for v in vs if v is not None), None), "len": len, "lower": str.lower}


def holds(condition: str, record: dict) -> bool:
    """A rule's condition on a record (the conditions of the base roles are Python expressions too)."""
    try:
        return bool(eval(compile(condition, "<role rule>", "eval"), {"__builtins__": {}, **FUNCTIONS},
                         _Names(record)))
    except TypeError:  # a comparison with a missing value: SQL's NULL, not true
        return False


def shares(caller: str, entity: str, action: str) -> list[dict]:
    role, team = USERS[caller]
    levels = {"read": ("read",), "write": ("read", "update")}
    return [s for s in ROLE_DOCS[role].get("sharing", [])
            if s["entity"] == entity and action in levels[s["level"]]
            and (s.get("team") is None or (s["team"] in TEAMS and team in subtree(s["team"])))]


def sees_entity(caller: str, entity: str) -> bool:
    role = USERS[caller][0]
    return scope(role, entity, "read") != "none" or scope(role, entity, "create") != "none" \
        or has_pool(role, entity) or bool(shares(caller, entity, "read"))


def in_scope(caller: str, entity: str, granted: str, record: dict) -> bool:
    if granted == "none":
        return False
    if granted == "all" or not owned(entity):
        return True
    team = USERS[caller][1]
    if granted == "own":
        return record["owner"] == caller
    if granted == "team":
        return record["team"] is not None and record["team"] == team
    assert granted == "subtree", granted
    return record["team"] in subtree(team)


#: Where an oracle record of a detail keeps its parent's oracle record (not a valid field name).
PARENT = "<parent>"


def may(caller: str, entity: str, action: str, record: dict, locks: bool = True) -> bool:
    """Whether ``caller`` may ``action`` (create | read | update | delete) this record (an oracle record:
    owner and team are user and team names; a detail's has its parent's under ``PARENT``). ``locks=False``
    leaves out the role's ``readonly_if``: a parent's lock covers the parent's fields, not its details."""
    role = USERS[caller][0]
    if not sees_entity(caller, entity):
        return False
    if master(entity):
        allowed = may_as_detail(caller, entity, action, record)
    else:
        allowed = in_scope(caller, entity, scope(role, entity, action), record)
        if not allowed and action == "read" and has_pool(role, entity) and record["owner"] is None:
            allowed = True
        if not allowed and any(holds(s["condition"], record) for s in shares(caller, entity, action)):
            allowed = True
    readonly_if = grant(role, entity).get("readonly_if")
    if allowed and locks and action in ("update", "delete") and readonly_if and holds(readonly_if, record):
        allowed = False
    return allowed


def may_as_detail(caller: str, entity: str, action: str, record: dict) -> bool:
    """A detail's own grant only says whether the action is allowed at all; the record is then allowed
    exactly when its parent is: to read it, reading the parent; to write it, updating the parent."""
    if scope(USERS[caller][0], entity, action) == "none":
        return False
    parent_action = "read" if action == "read" else "update"
    return may(caller, master(entity)[1], parent_action, record[PARENT], locks=False)


def expected_status(caller: str, entity: str, action: str, record: dict | None, refs: list | None = None) -> int:
    """``record`` is the record acted on (for a create, the one being created); ``refs`` the (entity,
    oracle record) of every record a create links to."""
    role = USERS[caller][0]
    if not sees_entity(caller, entity):
        return 404
    if action == "create":
        if scope(role, entity, "create") == "none":
            return 403
        if not all(may(caller, target, "read", rec) for target, rec in refs or ()):
            return 422  # linking to a record the caller cannot read is like linking to a missing one
        return 201 if may(caller, entity, "create", record) else 403
    if action == "list":
        return 200
    if not may(caller, entity, "read", record):
        return 404
    if action == "read":
        return 200
    allowed = may(caller, entity, action, record)
    if action == "update":
        allowed = allowed and field_rules(role, entity).get(EDIT[entity][0], "write") == "write"
        return 200 if allowed else 403
    return 204 if allowed else 403


# -- the world: one org and its records per backend ------------------------------------------------
@dataclass
class Record:
    entity: str
    id: str
    oracle: dict  # owner/team as names, plus the field values rules may look at


def oracle_record(entity: str, data: dict, owner: str | None, refs: dict[str, Record]) -> dict:
    """What the oracle knows of a record: its values, owner and team by name (if ``entity`` is owned), and
    a detail's parent's."""
    owner = owner if owned(entity) else None
    record = {**data, "owner": owner, "team": USERS[owner][1] if owner else None}
    link = master(entity)
    if link:
        record[PARENT] = refs[link[0]].oracle
    return record


@dataclass
class World:
    installation: Installation
    client: Any
    users: dict[str, str] = field(default_factory=dict)  # username → user id
    teams: dict[str, str] = field(default_factory=dict)  # team name → team id
    tokens: dict[str, dict] = field(default_factory=dict)
    records: dict[tuple[str, str | None, bool], Record] = field(default_factory=dict)  # (entity, owner, closed)
    counter: itertools.count = field(default_factory=itertools.count)

    def headers(self, username: str) -> dict:
        if username not in self.tokens:
            response = self.client.post("/api/auth/token",
                                        json={"username": username, "password": f"{username}-password"})
            assert response.status_code == 200, response.json
            self.tokens[username] = {"Authorization": f"Bearer {response.json['token']}"}
        return self.tokens[username]

    def unique(self, prefix: str) -> str:
        return f"{prefix} {next(self.counter)}"

    def payload(self, entity: str, owner: str | None, closed: bool = False) -> tuple[dict, dict[str, Record]]:
        """Minimal valid data for ``entity`` and the record each of its references names: ``owner``'s own;
        a detail's parent is the parent record in the situation (``owner``, ``closed``)."""
        data, refs = self._fields(entity, owner)
        link = master(entity)
        if link:
            name, target = link
            refs[name] = self.records[(target, owner, closed)]
        return {**data, **{name: record.id for name, record in refs.items()}}, refs

    def _fields(self, entity: str, owner: str | None) -> tuple[dict, dict[str, Record]]:
        """An entity's required values but references, and the record each reference it needs names
        (a detail's parent is :meth:`payload`'s to choose)."""
        def ref(name: str) -> dict[str, Record]:
            target = next(f["target"] for f in ENTITY_DOCS[entity]["fields"] if f["name"] == name)
            return {name: self.records[(target, owner, False)]}
        name = self.unique(entity)
        if entity == "lead":
            return {"name": name}, {}
        if entity == "account":
            return {"name": name}, {}
        if entity == "activity":
            return {"subject": name}, {}
        if entity == "tender":
            return {"title": name}, {}
        if entity == "product":
            return {"sku": name.replace(" ", "-"), "name": name}, {}
        if entity == "contact":
            return {"last_name": name}, ref("account")
        if entity == "opportunity":
            return {"name": name, "expected_close_date": "2026-06-30", "amount": 1000}, ref("account")
        if entity == "contract":
            return {"name": name, "amount": 1000}, ref("account")
        if entity == "payment":
            return {"instalment_no": 1, "due_date": "2026-07-01", "amount": 100}, {}
        raise AssertionError(f"no minimal payload for {entity}: add one")

    def create(self, entity: str, owner: str | None, closed: bool = False) -> Record:
        """A record created by the system in the situation (``owner``, ``closed``): owned by ``owner`` and
        in a closed stage, or, for a detail, under the parent record in that situation."""
        data, refs = self.payload(entity, owner, closed)
        if closed and not master(entity):
            data.update(CLOSED[entity])
        if owned(entity):
            data["owner"] = self.users[owner] if owner else None
        # the system context may load records in any stage but one only an action sets (a converted lead)
        action = "convert" if closed and entity == "lead" else None
        created = self.installation.records(None).create(entity, data, action=action)
        oracle = oracle_record(entity, data, owner, refs)
        if owned(entity):
            assert (created["owner"], created["team"]) == (data["owner"], self.teams.get(oracle["team"]))
        return Record(entity, created["id"], oracle)

    def discard(self, entity: str, record_id: str) -> None:
        try:
            self.installation.records(None).delete(entity, record_id)
        except NotFound:
            pass

    def situation(self, entity: str, caller: str, situation: str) -> Record:
        return self.records[(entity, *situation_key(entity, caller, situation))]

    def all_records(self, entity: str) -> list[Record]:
        return [r for (e, _, _), r in self.records.items() if e == entity]


# Reference targets first, so that every owner's contact/opportunity/contract refers to that owner's own
# account, and a detail comes after its parent.
BUILD_ORDER = ["account", "lead", "activity", "tender", "product", "contact", "opportunity", "contract", "payment"]
assert set(BUILD_ORDER) == set(ENTITIES), "a new base entity: give it a minimal payload and a place in BUILD_ORDER"
assert all(BUILD_ORDER.index(master(e)[1]) < BUILD_ORDER.index(e) for e in ENTITIES if master(e)), \
    "a detail entity must be built after its parent"


def _situations_built(world: World, entity: str) -> list[tuple[str | None, bool]]:
    """The (owner, closed) situations ``entity`` gets a record in: each of its parent's records for a
    detail; else every user's and the pool's, and each caller's closed one."""
    link = master(entity)
    if link:
        return [(owner, closed) for (e, owner, closed) in world.records if e == link[1]]
    if not owned(entity):
        return [(None, False)]
    return [(owner, False) for owner in [*USERS, *([None] if pooled(entity) else [])]] \
        + [(caller, True) for caller in CALLER.values() if entity in CLOSED]


def _build(world: World) -> None:
    accounts = world.installation.accounts
    for name, parent in TEAMS.items():
        world.teams[name] = accounts.create_team(name, parent)
    for username, (role, team) in USERS.items():
        world.users[username] = accounts.create_user(username, f"{username}-password", role, team)
    for entity in BUILD_ORDER:
        for owner, closed in _situations_built(world, entity):
            world.records[(entity, owner, closed)] = world.create(entity, owner, closed)


FAST_HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, runtime, tmp_path_factory):
    from crm_platform.web import create_app
    drop = None
    if request.param == "sqlite":
        url, options = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'crm.db'}", {}
    else:
        url = request.getfixturevalue("pg_database")  # skips when PostgreSQL is not reachable
        schema = f"matrix_{secrets.token_hex(4)}"
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        options = {"connect_args": {"options": f"-csearch_path={schema}"}}

        def drop():
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    inst = Installation(Settings(database_url=url), make_engine(url, **options), runtime, password_hasher=FAST_HASHER)
    inst.migrate()
    app = create_app(installation=inst)
    app.config["TESTING"] = True
    w = World(inst, app.test_client())
    _build(w)
    yield w
    inst.db.dispose()
    if drop:
        drop()


# -- the matrix --------------------------------------------------------------------------------
def _cases():
    for role in ROLES:
        for entity in ENTITIES:
            # creating a detail writes its parent: one case per situation of the parent
            for situation in situations(entity) if master(entity) else ["new"]:
                yield pytest.param(role, entity, "create", situation, id=f"{role}-{entity}-create-{situation}")
            for action in ("read", "list", "update", "delete"):
                for situation in situations(entity):
                    yield pytest.param(role, entity, action, situation, id=f"{role}-{entity}-{action}-{situation}")


def list_ids(world: World, caller: str, entity: str):
    response = world.client.get(f"{URL}/{entity}?limit=200&count=true", headers=world.headers(caller))
    return response, ({r["id"] for r in response.json["data"]} if response.status_code == 200 else None)


@pytest.mark.parametrize("role, entity, action, situation", list(_cases()))
def test_matrix(world, role, entity, action, situation):
    caller = CALLER[role]
    headers = world.headers(caller)
    system = world.installation.records(None)

    if action == "create":
        _check_create(world, caller, entity, situation)
        return

    if action in ("read", "list"):
        record = world.situation(entity, caller, situation)
        expected = expected_status(caller, entity, action, record.oracle)
        if action == "read":
            response = world.client.get(f"{URL}/{entity}/{record.id}", headers=headers)
            assert response.status_code == expected, response.json
            if expected == 200:
                assert response.json["id"] == record.id
            else:
                assert response.json["error"]["code"] == "not_found"
            return
        response, ids = list_ids(world, caller, entity)
        assert response.status_code == expected, response.json
        if expected == 404:
            return
        readable = may(caller, entity, "read", record.oracle)
        assert (record.id in ids) is readable, f"readable={readable}"
        visible = {r.id for r in world.all_records(entity) if may(caller, entity, "read", r.oracle)}
        assert ids == visible
        assert response.json["paging"]["total"] == len(visible)
        return

    # update and delete work on a fresh record in the same situation
    fresh = world.create(entity, *situation_key(entity, caller, situation))
    try:
        expected = expected_status(caller, entity, action, fresh.oracle)
        url = f"{URL}/{entity}/{fresh.id}"
        stored = system.get(entity, fresh.id)
        if action == "update":
            name, value = EDIT[entity]
            response = world.client.patch(url, json={"version": stored["version"], name: value}, headers=headers)
            assert response.status_code == expected, response.json
            after = system.get(entity, fresh.id)
            if expected == 200:
                assert response.json[name] == value and after[name] == value
                assert after["version"] == stored["version"] + 1
            else:
                assert after == stored  # nothing written
        else:
            response = world.client.delete(url, headers=headers)
            assert response.status_code == expected, response.json
            if expected == 204:
                with pytest.raises(NotFound):
                    system.get(entity, fresh.id)
            else:
                assert system.get(entity, fresh.id) == stored
        if expected in (403, 404):
            assert response.json["error"]["code"] == {403: "forbidden", 404: "not_found"}[expected]
    finally:
        world.discard(entity, fresh.id)


def _check_create(world: World, caller: str, entity: str, situation: str) -> None:
    """Create as ``caller`` a record of ``situation`` (for a detail, under the parent in it)."""
    system = world.installation.records(None)
    owner, closed = situation_key(entity, caller, situation)
    data, refs = world.payload(entity, owner, closed)
    new = oracle_record(entity, data, owner, refs)
    expected = expected_status(caller, entity, "create", new, [(r.entity, r.oracle) for r in refs.values()])
    before = system.list(entity, _count_query())["paging"]["total"]
    response = world.client.post(f"{URL}/{entity}", json=data, headers=world.headers(caller))
    try:
        assert response.status_code == expected, response.json
        if expected == 201 and owned(entity):
            assert (response.json["owner"], response.json["team"]) == \
                (world.users[caller], world.teams[USERS[caller][1]])
        if expected != 201:
            assert system.list(entity, _count_query())["paging"]["total"] == before
        if expected in (403, 404):
            assert response.json["error"]["code"] == {403: "forbidden", 404: "not_found"}[expected]
    finally:
        if response.status_code == 201:
            world.discard(entity, response.json["id"])


def _count_query():
    return ListQuery(limit=1, count=True)


# -- the oracle itself ------------------------------------------------------------------------------
def test_the_oracle_applies_scopes_pools_sharing_and_readonly_if(monkeypatch):
    """Guards the oracle on a made-up role (if it drifted, the matrix would agree with anything)."""
    monkeypatch.setitem(ROLE_DOCS, "rep", {"name": "rep", "entities": {
        "lead": {"actions": {"read": "own", "update": "own", "delete": "team"}, "pool": True,
                 "readonly_if": "stage == 'converted'"},
        "opportunity": {"actions": {"read": "subtree", "create": "own"}},
        "product": {"actions": {"read": "own"}, "fields": {"cost_price": "hidden"}}},
        "sharing": [{"entity": "opportunity", "condition": "amount >= 100", "level": "read", "team": "North"}]})
    mine, colleague = {"owner": "rep", "team": "Shanghai"}, {"owner": "rep3", "team": "Shanghai"}
    pool, elsewhere = {"owner": None, "team": None}, {"owner": "north_rep", "team": "North"}
    assert may("rep", "lead", "read", mine) and may("rep", "lead", "update", mine)
    assert not may("rep", "lead", "read", colleague) and may("rep", "lead", "read", pool)
    assert not may("rep", "lead", "update", pool) and not may("rep", "lead", "delete", pool)
    assert not may("rep", "lead", "update", {**mine, "stage": "converted"})
    assert expected_status("rep", "lead", "update", {**mine, "stage": "converted"}) == 403
    assert expected_status("rep", "lead", "delete", colleague) == 404  # in delete scope, but not readable
    assert expected_status("rep", "lead", "create", None) == 403
    assert may("rep", "opportunity", "read", colleague) and not may("rep", "opportunity", "read", elsewhere)
    assert not may("rep", "opportunity", "read", {**elsewhere, "amount": 500})  # shared with North only
    assert may("north_rep", "opportunity", "read", {"owner": "rep", "team": "Shanghai", "amount": 500})
    assert not may("north_rep", "opportunity", "read", {"owner": "rep", "team": "Shanghai", "amount": 50})
    assert expected_status("rep", "opportunity", "update", colleague) == 403
    assert may("rep", "product", "read", pool) and not sees_entity("rep", "contract")
    assert expected_status("rep", "contract", "create", None) == 404
    assert expected_status("admin", "lead", "delete", {**mine, "stage": "converted"}) == 204


def test_the_oracle_treats_any_detail_entity_by_its_parent(monkeypatch):
    """Guards the detail rule on made-up entities (quote lines of an opportunity, notes on a line) and a
    made-up role whose parent grants read and update differently, which the base roles never do."""
    def reference(target: str) -> dict:
        return {"name": target, "type": "reference", "target": target, "detail": True}
    monkeypatch.setitem(ENTITY_DOCS, "quote_line", {"name": "quote_line", "fields": [reference("opportunity")]})
    monkeypatch.setitem(ENTITY_DOCS, "line_note", {"name": "line_note", "fields": [reference("quote_line")]})
    monkeypatch.setitem(ROLE_DOCS, "rep", {"name": "rep", "entities": {
        "opportunity": {"actions": {"read": "team", "update": "own", "create": "own"},
                        "readonly_if": "stage == 'won'"},
        "quote_line": {"actions": {"read": "own", "create": "own", "update": "own", "delete": "none"}},
        "line_note": {"actions": {"read": "all", "create": "all", "update": "all", "delete": "all"}}}})

    def line(opportunity: dict) -> dict:
        return {"owner": None, "team": None, PARENT: opportunity}
    mine, won = {"owner": "rep", "team": "Shanghai"}, {"owner": "rep", "team": "Shanghai", "stage": "won"}
    colleague, elsewhere = {"owner": "rep3", "team": "Shanghai"}, {"owner": "rep2", "team": "Hangzhou"}
    assert master("quote_line") == ("opportunity", "opportunity") and root("line_note") == "opportunity"
    assert situations("line_note") == situations("opportunity")
    assert may("rep", "quote_line", "update", line(mine))
    assert not may("rep", "quote_line", "delete", line(mine))  # the line's own grant: none
    assert not may("rep", "opportunity", "update", won) and may("rep", "quote_line", "update", line(won))
    assert may("rep", "quote_line", "read", line(colleague))  # the line's "own" scope is moot
    assert not may("rep", "quote_line", "update", line(colleague))
    assert expected_status("rep", "quote_line", "create", line(colleague), [("opportunity", colleague)]) == 403
    assert expected_status("rep", "quote_line", "create", line(mine), [("opportunity", mine)]) == 201
    assert expected_status("rep", "quote_line", "create", line(elsewhere), [("opportunity", elsewhere)]) == 422
    assert not may("rep", "quote_line", "read", line(elsewhere))
    assert may("rep", "line_note", "read", line(line(colleague)))
    assert not may("rep", "line_note", "update", line(line(colleague)))
    assert may("rep", "line_note", "delete", line(line(won)))


# -- field-level rules ------------------------------------------------------------------------------
VALUES = {"currency": 1, "decimal": 1, "integer": 1, "percent": 1, "formula": 1, "text": "x", "textarea": "x",
          "datetime": "2026-01-01T00:00:00Z", "date": "2026-01-01", "boolean": True}


def _own(caller: str, entity: str) -> dict:
    """An oracle record of ``caller``'s own (a detail: under a parent record of the caller's own)."""
    link = master(entity)
    if link:
        return {"owner": None, "team": None, PARENT: _own(caller, link[1])}
    return oracle_record(entity, {}, caller, {})


def _field_cases(writers: bool):
    """(role, entity) pairs with field rules; ``writers``: only those where the role may update its own records."""
    for role in ROLES:
        for entity in ENTITIES:
            if not any(level != "write" for level in field_rules(role, entity).values()):
                continue
            if may(CALLER[role], entity, "update", _own(CALLER[role], entity)) or not writers:
                yield pytest.param(role, entity, id=f"{role}-{entity}")


@pytest.mark.parametrize("role, entity", list(_field_cases(writers=False)))
def test_hidden_fields_are_absent_and_read_only_fields_are_marked(world, role, entity):
    caller = CALLER[role]
    headers = world.headers(caller)
    rules = field_rules(role, entity)
    hidden = {name for name, level in rules.items() if level == "hidden"}
    record = world.situation(entity, caller, home(entity))
    assert may(caller, entity, "read", record.oracle), "a role with field rules should read its own records"
    got = world.client.get(f"{URL}/{entity}/{record.id}", headers=headers)
    assert got.status_code == 200
    assert not hidden & set(got.json), "hidden fields are not returned"
    assert set(rules) - hidden <= set(got.json)
    listed = world.client.get(f"{URL}/{entity}?limit=200", headers=headers).json["data"]
    assert listed and not any(hidden & set(r) for r in listed)
    names = {f["name"]: f for f in world.client.get(f"/api/meta/entities/{entity}", headers=headers).json["fields"]}
    assert not hidden & set(names)
    for name, level in rules.items():
        if level != "hidden":
            assert names[name]["readonly"] is (level == "read"), name


@pytest.mark.parametrize("role, entity", list(_field_cases(writers=True)))
def test_writing_fields_a_role_may_not_write_is_403_naming_them_all(world, role, entity):
    caller = CALLER[role]
    headers = world.headers(caller)
    denied = {name for name, level in field_rules(role, entity).items() if level != "write"}
    hidden = {name for name, level in field_rules(role, entity).items() if level == "hidden"}
    fresh = world.create(entity, *situation_key(entity, caller, home(entity)))
    try:
        system = world.installation.records(None)
        stored = system.get(entity, fresh.id)
        url = f"{URL}/{entity}/{fresh.id}"
        types = {f["name"]: f["type"] for f in ENTITY_DOCS[entity]["fields"]}
        name, value = EDIT[entity]
        body = {"version": stored["version"], name: value, **{n: VALUES[types[n]] for n in sorted(denied)}}
        response = world.client.patch(url, json=body, headers=headers)
        assert response.status_code == 403, response.json
        assert response.json["error"]["code"] == "forbidden"
        assert set(response.json["error"]["fields"]) == denied
        assert system.get(entity, fresh.id) == stored  # nothing written, not even the allowed field
        for n in sorted(denied):  # one at a time, too
            single = world.client.patch(url, json={"version": stored["version"], n: VALUES[types[n]]}, headers=headers)
            assert (single.status_code, set(single.json["error"]["fields"])) == (403, {n})
        ok = world.client.patch(url, json={"version": stored["version"], name: value}, headers=headers)
        assert ok.status_code == 200 and not hidden & set(ok.json)
        created = world.client.post(f"{URL}/{entity}", headers=headers, json={
            **world.payload(entity, *situation_key(entity, caller, home(entity)))[0],
            **{n: VALUES[types[n]] for n in sorted(denied)}})
        assert created.status_code == 403 and set(created.json["error"]["fields"]) == denied
    finally:
        world.discard(entity, fresh.id)
