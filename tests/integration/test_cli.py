"""The `crm` command (a contract): init, definitions validate, migrate, teams, users, serve."""

from __future__ import annotations

import json
import re
import secrets
import stat
from pathlib import Path

import flask
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crm_platform.cli import main
from crm_platform.demo import USERS
from crm_platform.engine import ListQuery, make_engine
from crm_platform.engine.errors import Unauthenticated
from crm_platform.installation import Installation, Settings

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"
DEMO_ENTITIES = ("lead", "account", "contact", "opportunity", "activity", "contract", "payment", "tender", "product")


@pytest.fixture
def crm(tmp_path, monkeypatch):
    """``crm("init", "--demo")`` → the click Result, against a SQLite file in tmp_path (instance folder:
    tmp_path/instance). ``crm(..., env={...})`` adds environment variables."""
    for name in ("CRM_PACKS", "CRM_PACKS_PATH", "CRM_REDIS_URL", "CRM_SECRET_KEY", "CRM_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    runner = CliRunner()

    def run(*args, env=None):
        return runner.invoke(main, list(args), catch_exceptions=False,
                             env={"CRM_DATABASE_URL": url, "CRM_INSTANCE_PATH": str(run.instance), **(env or {})})
    run.url = url
    run.file = tmp_path / "crm.db"
    run.instance = tmp_path / "instance"
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


def write_pack(root: Path, folder: str, **entities: list[tuple[str, str]]) -> str:
    """A pack named "shop" in ``root/folder`` with the given entities (name → [(field, type), ...])."""
    (root / folder / "entities").mkdir(parents=True)
    manifest = {"name": "shop", "version": "1.0.0", "label": {"en": "S"}}
    (root / folder / "pack.json").write_text(json.dumps(manifest))
    for name, fields in entities.items():
        entity = {"name": name, "label": {"en": name.title()},
                  "fields": [{"name": f, "type": t, "label": {"en": f.title()}} for f, t in fields]}
        (root / folder / "entities" / f"{name}.json").write_text(json.dumps(entity))
    return str(root / folder)


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

def test_migrate_plan_shows_steps_without_applying_them(crm, tmp_path):
    v1 = write_pack(tmp_path, "v1", item=[("qty", "text")])
    v2 = write_pack(tmp_path, "v2", item=[("qty", "text")], thing=[("title", "text")])
    assert crm("--packs", v1, "init").exit_code == 0
    result = crm("--packs", v2, "migrate", "--plan")
    assert result.exit_code == 0, result.output
    assert "create_table    thing" in result.output and "Run `crm migrate --apply`" in result.output
    assert Installation.open(Settings(database_url=crm.url, packs=v2)).plan() != []
    applied = crm("--packs", v2, "migrate", "--apply")
    assert applied.exit_code == 0 and "Applied 1 of 1 step(s)." in applied.output
    assert Installation.open(Settings(database_url=crm.url, packs=v2)).plan() == []


def test_migrate_plan_on_an_up_to_date_database_has_nothing_to_do(crm):
    assert crm("init").exit_code == 0
    result = crm("migrate", "--plan")
    assert (result.exit_code, flat(result.output)) == (0, "Nothing to do: the database matches the definitions.")


def test_migrate_apply_leaves_blocked_steps_and_exits_1(crm, tmp_path, served):
    v1 = write_pack(tmp_path, "v1", item=[("qty", "text")])
    v2 = write_pack(tmp_path, "v2", item=[("qty", "integer")])
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
     "error: Unknown role 'wizard' (known: admin, manager, marketing, rep, supervisor)."),
    (["users", "create", "--username", "u", "--password", "short", "--role", "rep"],
     "error: A password needs at least 8 characters."),
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
    assert (team.exit_code, flat(team.stderr)) == (1, "error: A team named 'East' exists already.")
    assert (user.exit_code, flat(user.stderr)) == (1, "error: A user named 'bob' exists already.")


# --- serve ------------------------------------------------------------------------------------------------

def test_serve_refuses_to_start_on_a_database_that_is_behind(crm, tmp_path, served):
    v1 = write_pack(tmp_path, "v1", item=[("qty", "text")])
    v2 = write_pack(tmp_path, "v2", item=[("qty", "text"), ("size", "integer")])
    assert crm("--packs", v1, "init").exit_code == 0
    result = crm("--packs", v2, "serve")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("error: the database schema is behind the definitions (1 change(s) pending); "
                             "run `crm migrate --plan` to review them, then `crm migrate --apply`\n")
    assert served == []


def test_serve_starts_once_the_database_is_migrated(crm, served):
    assert crm("init").exit_code == 0
    result = crm("serve", "--port", "5055")
    assert result.exit_code == 0, result.output
    assert "Serving on http://127.0.0.1:5055" in result.output
    assert served == [{"host": "127.0.0.1", "port": 5055, "threaded": True}]


# --- before `crm init`, and other failures: one line, exit 1 ----------------------------------------------

BEFORE_INIT = {
    "serve": ["serve"],
    "migrate-plan": ["migrate", "--plan"],
    "migrate-apply": ["migrate", "--apply"],
    "users-create": ["users", "create", "--username", "u", "--password", "long-enough-1", "--role", "rep"],
    "users-deactivate": ["users", "deactivate", "u"],
    "teams-create": ["teams", "create", "East"],
    "permissions-explain": ["permissions", "explain", "--user", "u", "--entity", "lead", "--action", "read"],
}


@pytest.mark.parametrize("args", BEFORE_INIT.values(), ids=BEFORE_INIT.keys())
def test_commands_before_init_say_to_run_init_and_leave_no_database_file(crm, args, served):
    result = crm(*args)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: the database at {crm.url} has no CRM tables yet; run `crm init` first\n"
    assert not crm.file.exists() and not crm.instance.exists()
    assert served == []


def test_a_command_on_an_existing_database_without_crm_tables_says_to_run_init(crm):
    with make_engine(crm.url).begin() as conn:
        conn.execute(sa.text("CREATE TABLE unrelated (x INTEGER)"))
    result = crm("teams", "create", "East")
    assert (result.exit_code, result.stderr) == (
        1, f"error: the database at {crm.url} has no CRM tables yet; run `crm init` first\n")
    assert sa.inspect(make_engine(crm.url)).get_table_names() == ["unrelated"]  # nothing created or removed


def test_a_command_on_an_empty_postgresql_schema_says_to_run_init(crm, pg_database):
    schema = f"cli_{secrets.token_hex(4)}"
    admin = make_engine(pg_database)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{pg_database}?options=-csearch_path%3D{schema}"
        result = crm("users", "deactivate", "nobody", env={"CRM_DATABASE_URL": url})
        shown = sa.make_url(url).render_as_string(hide_password=True)
        assert (result.exit_code, result.stderr) == (
            1, f"error: the database at {shown} has no CRM tables yet; run `crm init` first\n")
        assert sa.inspect(admin).get_table_names(schema=schema) == []
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.parametrize("args", [["init"], ["teams", "create", "East"]], ids=["init", "teams-create"])
def test_an_unreachable_database_is_one_line_naming_it_without_its_password(crm, args):
    url = "postgresql://crm:s3cret-pw@127.0.0.1:1/crm"
    result = crm(*args, env={"CRM_DATABASE_URL": url})
    assert (result.exit_code, result.stdout) == (1, "")
    assert re.fullmatch(r"error: cannot connect to postgresql://crm:\*\*\*@127\.0\.0\.1:1/crm: .+; "
                        r"check CRM_DATABASE_URL\n", result.stderr), result.stderr
    assert "s3cret-pw" not in result.stderr


def test_an_unexpected_error_is_one_line_and_its_traceback_shows_at_debug_level(crm, monkeypatch):
    def broken(self, drop_archived=False):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(Installation, "migrate", broken)
    result = crm("init")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("error: unexpected RuntimeError: disk on fire "
                             "(run again with CRM_LOG_LEVEL=DEBUG for the traceback)\n")
    with pytest.raises(RuntimeError, match="disk on fire"):
        crm("init", env={"CRM_LOG_LEVEL": "DEBUG"})


# --- the secret key -----------------------------------------------------------------------------------------

def test_init_writes_a_private_secret_key_once(crm):
    first = crm("init")
    assert first.exit_code == 0, first.output
    key_file = crm.instance / "secret_key"
    assert f"Session key written to {key_file}" in flat(first.stdout)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    again = crm("init")
    assert again.exit_code == 0 and "Session key written" not in again.stdout
    assert key_file.read_text().strip() == key


def test_init_writes_no_key_file_when_the_key_comes_from_the_environment(crm):
    assert crm("init", env={"CRM_SECRET_KEY": "k" * 64}).exit_code == 0
    assert not (crm.instance / "secret_key").exists()


def test_sessions_survive_a_restart_when_the_key_comes_from_the_instance_folder(crm, monkeypatch):
    from crm_platform.web import create_app
    assert crm("init").exit_code == 0
    assert crm("teams", "create", "East").exit_code == 0
    assert crm("users", "create", "--username", "bob", "--password", "bob-password-1", "--role", "rep",
               "--team", "East").exit_code == 0
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(crm.instance))
    monkeypatch.setenv("CRM_DATABASE_URL", crm.url)
    before, after = create_app(), create_app()  # two processes, or one before and after a restart
    browser = before.test_client()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', browser.get("/login").text).group(1)
    assert browser.post("/login", data={"username": "bob", "password": "bob-password-1",
                                        "csrf_token": token}).status_code == 302
    cookie = browser.get_cookie("session")
    restarted = after.test_client()
    restarted.set_cookie("session", cookie.value)
    assert 'id="current-user">bob<' in restarted.get("/").text
