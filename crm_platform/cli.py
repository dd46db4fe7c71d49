"""The `crm` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .metadata import DefinitionError

console = Console()
err = Console(stderr=True)


def _open(ctx: click.Context):
    from .installation import Installation, Settings
    try:
        return Installation.open(Settings.from_env(packs=ctx.obj.get("packs"), database_url=ctx.obj.get("database")))
    except DefinitionError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        err.print(f"[red]{len(exc.problems)} problem(s) in the definitions[/red]")
        sys.exit(1)


@click.group()
@click.option("--packs", envvar="CRM_PACKS", help="Packs to load (default: base).")
@click.option("--database", envvar="CRM_DATABASE_URL", help="Database URL (default: SQLite under instance/).")
@click.pass_context
def main(ctx: click.Context, packs: str | None, database: str | None) -> None:
    """A metadata-driven CRM."""
    ctx.obj = {"packs": packs, "database": database}


@main.command()
@click.option("--demo", is_flag=True, help="Also create demo users for each role and sample records.")
@click.pass_context
def init(ctx, demo: bool) -> None:
    """Create or upgrade the database for the installed packs."""
    inst = _open(ctx)
    done = inst.migrate()
    console.print(f"Database ready: {len(done)} change(s) applied ({inst.db.url.render_as_string(hide_password=True)}).")
    if demo:
        from .demo import install_demo
        users = install_demo(inst)
        table = Table(title="Demo logins")
        for column in ("username", "password", "role", "team"):
            table.add_column(column)
        for row in users:
            table.add_row(*row)
        console.print(table)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.pass_context
def serve(ctx, host: str, port: int) -> None:
    """Serve the web UI and API (development server; use gunicorn in production)."""
    from .installation import SchemaBehind
    from .web import create_app
    try:
        app = create_app(installation=_open(ctx))
    except SchemaBehind as exc:
        err.print(str(exc), markup=False)
        sys.exit(1)
    console.print(f"Serving on http://{host}:{port}  (API: /api, OpenAPI: /api/openapi.json)")
    app.run(host=host, port=port, threaded=True)


@main.group()
def definitions() -> None:
    """Work with definition files."""


@definitions.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Validate packs (or files inside packs); print `file: /pointer: message` for every problem."""
    from .metadata.validate import validate_paths
    problems, checked = validate_paths(list(paths))
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked} pack(s)", err=True)
        sys.exit(1)
    click.echo(f"OK: {checked} pack(s) valid", err=True)


@main.command()
@click.option("--plan", "show_plan", is_flag=True, help="Show what the definitions need (default).")
@click.option("--apply", "do_apply", is_flag=True, help="Apply the plan.")
@click.option("--drop-archived", is_flag=True, help="Also drop columns/tables the definitions no longer have (data loss!).")
@click.pass_context
def migrate(ctx, show_plan: bool, do_apply: bool, drop_archived: bool) -> None:
    """Plan or apply the schema changes the definitions need."""
    inst = _open(ctx)
    steps = inst.plan()
    if not steps:
        console.print("Nothing to do: the database matches the definitions.")
        inst.record_version()
        return
    for step in steps:
        click.echo(f"  {step}")
    if not do_apply:
        click.echo("Run `crm migrate --apply` to apply (archived columns and tables are kept unless --drop-archived).")
        return
    done = inst.migrate(drop_archived=drop_archived)
    click.echo(f"Applied {len(done)} of {len(steps)} step(s).")
    if any(s.blocked for s in steps):
        click.echo("Blocked steps were not applied; fix the data they name first.", err=True)
        sys.exit(1)


@main.group()
def teams() -> None:
    """Manage the org tree."""


@teams.command("create")
@click.argument("name")
@click.option("--parent", help="The parent team's name.")
@click.pass_context
def teams_create(ctx, name: str, parent: str | None) -> None:
    _run(lambda: _open(ctx.parent.parent).accounts.create_team(name, parent), f"Team {name!r} created.")


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True, confirmation_prompt=False)
@click.option("--role", required=True)
@click.option("--team")
@click.pass_context
def users_create(ctx, username, password, role, team) -> None:
    _run(lambda: _open(ctx.parent.parent).accounts.create_user(username, password, role, team),
         f"User {username!r} created.")


@users.command("deactivate")
@click.argument("username")
@click.pass_context
def users_deactivate(ctx, username) -> None:
    """Deactivate a user: no more logins, tokens revoked; their records stay owned until reassigned."""
    _run(lambda: _open(ctx.parent.parent).accounts.deactivate_user(username), f"User {username!r} deactivated.")


@main.group()
def permissions() -> None:
    """Inspect permissions."""


@permissions.command("explain")
@click.option("--user", "username", required=True, help="Username (or id) of the user to explain for.")
@click.option("--entity", required=True)
@click.option("--action", required=True, type=click.Choice(["create", "read", "update", "delete", "assign",
                                                             "convert", "import", "export"]))
@click.option("--id", "record_id", help="A record id: explain for that record.")
@click.option("--field", help="A field: explain access to it.")
@click.pass_context
def permissions_explain(ctx, username, entity, action, record_id, field) -> None:
    """May USER do ACTION (on the record / the field), and why. Exit 0 if allowed, 1 if not."""
    from .engine.errors import RecordError
    inst = _open(ctx.parent.parent)
    try:
        subject = inst.accounts.find_actor(username)
        answer = inst.records(None).explain(entity, action, subject, record_id, field)
    except RecordError as exc:
        err.print(f"[red]error:[/red] {exc.message.render()}")
        sys.exit(2)
    verdict = "[green]ALLOWED[/green]" if answer["allowed"] else "[red]DENIED[/red]"
    target = f"{entity} {record_id}" if record_id else entity
    console.print(f"{verdict}: {subject.username} ({subject.role}) {action} {target}" + (f" field {field}" if field else ""),
                  soft_wrap=True)
    for reason in answer["reasons"]:
        click.echo(f"  - {reason}")
    sys.exit(0 if answer["allowed"] else 1)


def _run(action, success: str) -> None:
    from .engine.errors import RecordError
    try:
        action()
    except RecordError as exc:
        err.print(f"[red]error:[/red] {exc.message.render()}")
        sys.exit(1)
    console.print(success)
