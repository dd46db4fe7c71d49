"""The `crm` command (a contract): init, definitions validate, migrate, teams, users, serve."""

from __future__ import annotations

import json
from pathlib import Path

import flask
import pytest
from click.testing import CliRunner

from crm_platform.cli import main
from crm_platform.demo import USERS
from crm_platform.engine import ListQuery
from crm_platform.engine.errors import Unauthenticated
from crm_platform.installation import Installation, Settings

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"
DEMO_ENTITIES = ("lead", "account", "contact", "opportunity", "activity", "contract", "payment", "tender", "product")


@pytest.fixture
def crm(tmp_path, monkeypatch):
    """``crm("init", "--demo")`` → the click Result, against a SQLite file in tmp_path."""
    for name in ("CRM_PACKS", "CRM_PACKS_PATH", "CRM_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, list(args), env={"CRM_DATABASE_URL": url}, catch_exceptions=False)
    run.url = url
    return run


@pytest.fixture
def served(monkeypatch):
    """Replaces Flask's development server: records the call instead of serving forever."""
    calls = []
    monkeypatch.setattr(flask.Flask, "run", lambda app, **kwargs: calls.append(kwargs))
    return calls


def opened(url: str) -> Installation:
    return Installation.open(Settings(database_url=url))


def flat(text: str) -> str:
    return " ".join(text.split())


def counts(inst: Installation) -> dict[str, int]:
    records = inst.records(None)
    return {name: records.list(name, ListQuery(limit=1, count=True))["paging"]["total"] for name in DEMO_ENTITIES}


# --- init -----------------------------------------------------------------------------------------------

def test_init_demo_prints_the_demo_logins_and_creates_records(crm):
    result = crm("init", "--demo")
    assert result.exit_code == 0, result.output
    assert "Database ready:" in result.output and "Demo logins" in result.output
    inst = opened(crm.url)
    assert {role for _, _, role, _ in USERS} == set(inst.runtime.catalog.roles)  # a login for each role
    for username, password, role, team in USERS:
        line = next(line for line in result.output.splitlines() if f" {username} " in line)
        assert password in line and role in line and team in line
        actor = inst.accounts.authenticate(username, password)
        assert (actor.role, actor.team) == (role, inst.accounts.team_id(team))
    assert {name: n for name, n in counts(inst).items() if n == 0} == {}
    inst.check_schema()


def test_init_demo_twice_changes_nothing_the_second_time(crm):
    assert crm("init", "--demo").exit_code == 0
    before = counts(opened(crm.url))
    again = crm("init", "--demo")
    assert again.exit_code == 0, again.output
    assert "Database ready: 0 change(s) applied" in again.output and "Demo logins" in again.output
    assert counts(opened(crm.url)) == before


def test_init_without_demo_creates_the_schema_only(crm):
    result = crm("init")
    assert result.exit_code == 0 and "Demo logins" not in result.output
    inst = opened(crm.url)
    assert inst.plan() == [] and counts(inst) == dict.fromkeys(DEMO_ENTITIES, 0)


# --- definitions validate ---------------------------------------------------------------------------------

def test_definitions_validate_accepts_the_base_pack(crm):
    result = crm("definitions", "validate", str(DEFINITIONS / "base"))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "OK: 1 pack(s) valid\n")


def test_definitions_validate_prints_every_problem_as_file_pointer_message(crm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop/entities").mkdir(parents=True)
    (tmp_path / "shop/pack.json").write_text(json.dumps({"name": "shop", "version": "1.0.0", "label": {"en": "Shop"}}))
    thing = {"name": "thing", "label": {"en": "Thing"}, "fields": [
        {"name": "title", "type": "txt", "label": {"en": "Title"}},
        {"name": "size", "type": "integer", "label": {"en": "Size"}, "lable": {"en": "Size"}}]}
    (tmp_path / "shop/entities/thing.json").write_text(json.dumps(thing))
    result = crm("definitions", "validate", "shop")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "shop/entities/thing.json: /fields/0/type: unknown type 'txt' (did you mean 'text'?)",
        "shop/entities/thing.json: /fields/1/lable: unknown key 'lable' (did you mean 'label'?)"]
    assert result.stderr == "2 problem(s) in 1 pack(s)\n"
    single = crm("definitions", "validate", "shop/entities/thing.json")
    assert single.exit_code == 1 and single.stdout == result.stdout


def test_commands_refuse_to_start_on_broken_definitions(crm, tmp_path):
    (tmp_path / "broken/entities").mkdir(parents=True)
    (tmp_path / "broken/pack.json").write_text('{"name": "broken", "version": "1.0.0", "label": {"en": "B"}}')
    (tmp_path / "broken/entities/x.json").write_text('{"name": "x", "fields": [{"name": "n", "type": "txt"}]}')
    result = crm("--packs", str(tmp_path / "broken"), "init")
    assert result.exit_code == 1
    assert "/fields/0/type: unknown type 'txt' (did you mean 'text'?)" in result.stderr
    assert "1 problem(s) in the definitions" in result.stderr


# --- migrate ----------------------------------------------------------------------------------------------

def test_migrate_plan_shows_steps_without_applying_them(crm):
    result = crm("migrate", "--plan")
    assert result.exit_code == 0, result.output
    assert "create_table    lead" in result.output and "Run `crm migrate --apply`" in result.output
    assert opened(crm.url).plan() != []
    applied = crm("migrate", "--apply")
    assert applied.exit_code == 0 and "Applied" in applied.output
    assert opened(crm.url).plan() == []


def test_migrate_plan_on_an_up_to_date_database_has_nothing_to_do(crm):
    assert crm("init").exit_code == 0
    result = crm("migrate", "--plan")
    assert (result.exit_code, flat(result.output)) == (0, "Nothing to do: the database matches the definitions.")


def test_migrate_apply_leaves_blocked_steps_and_exits_1(crm, tmp_path, served):
    def pack(name, qty_type):
        (tmp_path / name / "entities").mkdir(parents=True)
        manifest = {"name": "shop", "version": "1.0.0", "label": {"en": "S"}}
        item = {"name": "item", "label": {"en": "Item"},
                "fields": [{"name": "qty", "type": qty_type, "label": {"en": "Q"}}]}
        (tmp_path / name / "pack.json").write_text(json.dumps(manifest))
        (tmp_path / name / "entities/item.json").write_text(json.dumps(item))
        return str(tmp_path / name)
    v1, v2 = pack("v1", "text"), pack("v2", "integer")
    assert crm("--packs", v1, "init").exit_code == 0
    Installation.open(Settings(database_url=crm.url, packs=v1)).records(None).create("item", {"qty": "many"})
    planned = crm("--packs", v2, "migrate", "--plan")
    assert planned.exit_code == 0
    assert "change_type     item.qty" in planned.stdout and "BLOCKED: 1 value(s) would not convert" in planned.stdout
    applied = crm("--packs", v2, "migrate", "--apply")
    assert applied.exit_code == 1
    assert "Applied 0 of 1 step(s)." in applied.stdout
    assert "Blocked steps were not applied" in applied.stderr
    assert crm("--packs", v2, "serve").exit_code == 1 and served == []


# --- teams and users --------------------------------------------------------------------------------------

def test_teams_and_users_are_created_and_users_deactivated(crm):
    assert crm("init").exit_code == 0
    assert flat(crm("teams", "create", "Head Office").output) == "Team 'Head Office' created."
    assert crm("teams", "create", "East", "--parent", "Head Office").exit_code == 0
    result = crm("users", "create", "--username", "bob", "--password", "bob-password-1", "--role", "rep",
                 "--team", "East")
    assert (result.exit_code, flat(result.output)) == (0, "User 'bob' created.")
    inst = opened(crm.url)
    bob = inst.accounts.authenticate("bob", "bob-password-1")
    assert (bob.role, bob.team) == ("rep", inst.accounts.team_id("East"))

    result = crm("users", "deactivate", "bob")
    assert (result.exit_code, flat(result.output)) == (0, "User 'bob' deactivated.")
    with pytest.raises(Unauthenticated):
        inst.accounts.authenticate("bob", "bob-password-1")


@pytest.mark.parametrize("args, message", [
    (["users", "create", "--username", "u", "--password", "long-enough-1", "--role", "wizard"],
     "error: unknown role 'wizard' (known: admin, manager, marketing, rep, supervisor)"),
    (["users", "create", "--username", "u", "--password", "short", "--role", "rep"],
     "error: a password needs at least 8 characters"),
    (["users", "create", "--username", "u", "--password", "long-enough-1", "--role", "rep", "--team", "Mars"],
     "error: No team with id 'Mars'."),
    (["users", "deactivate", "nobody"], "error: No user with id 'nobody'."),
    (["teams", "create", "East", "--parent", "Nowhere"], "error: No team with id 'Nowhere'."),
], ids=["unknown-role", "short-password", "unknown-team", "unknown-user", "unknown-parent"])
def test_account_commands_fail_with_a_clear_message(crm, args, message):
    assert crm("init").exit_code == 0
    result = crm(*args)
    assert (result.exit_code, flat(result.stderr)) == (1, message)
    assert result.stdout == ""


def test_creating_an_existing_team_or_user_fails(crm):
    assert crm("init").exit_code == 0
    assert crm("teams", "create", "East").exit_code == 0
    assert crm("users", "create", "--username", "bob", "--password", "bob-password-1", "--role", "rep").exit_code == 0
    team = crm("teams", "create", "East")
    user = crm("users", "create", "--username", "bob", "--password", "bob-password-2", "--role", "rep")
    assert (team.exit_code, flat(team.stderr)) == (1, "error: a team named 'East' exists already")
    assert (user.exit_code, flat(user.stderr)) == (1, "error: a user named 'bob' exists already")


# --- serve ------------------------------------------------------------------------------------------------

def test_serve_refuses_to_start_on_a_database_that_is_behind(crm, served):
    result = crm("serve")
    assert result.exit_code == 1
    assert "crm migrate --plan" in result.stderr and "crm migrate --apply" in result.stderr
    assert "create_table" in result.stderr
    assert served == []


def test_serve_starts_once_the_database_is_migrated(crm, served):
    assert crm("init").exit_code == 0
    result = crm("serve", "--port", "5055")
    assert result.exit_code == 0, result.output
    assert "Serving on http://127.0.0.1:5055" in result.output
    assert served == [{"host": "127.0.0.1", "port": 5055, "threaded": True}]
