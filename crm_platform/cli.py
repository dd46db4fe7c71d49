"""The `crm` command.

Every failure is one line on stderr, ``error: <what> ...; <the command to run next>``, and exit
status 1; the traceback only with ``CRM_LOG_LEVEL=DEBUG``. Definition problems are one line each.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .logs import configure_logging, debug_enabled
from .metadata import DefinitionError

console = Console()
log = logging.getLogger(__name__)


def fail(message: str, status: int = 1):
    """Print ``error: message`` as one line on stderr and exit."""
    click.echo(click.style("error:", fg="red") + " " + " ".join(message.split()), err=True)
    sys.exit(status)


def _shown(url: str) -> str:
    import sqlalchemy as sa
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "the configured database"


def _reason(exc: Exception) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


def _open(ctx: click.Context, initialised: bool = True):
    """The installation for this command. With ``initialised`` (every command but `crm init`), a
    database that `crm init` never prepared is refused before anything is written to it."""
    import sqlalchemy as sa
    from .installation import Installation, Settings
    settings = Settings.from_env(packs=ctx.obj.get("packs"), database_url=ctx.obj.get("database"))
    try:
        inst = Installation.open(settings)
    except DefinitionError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail(f"{len(exc.problems)} problem(s) in the definitions; fix them, then check with "
             f"`crm definitions validate PACK`")
    try:
        if initialised:
            inst.check_initialised()
        else:
            inst.make_folder()
            with inst.db.connect():
                pass
    except sa.exc.OperationalError as exc:
        fail(f"cannot connect to {_shown(settings.database_url)}: {_reason(exc)}; check CRM_DATABASE_URL")
    return inst


def _one_line(exc: Exception) -> str | None:
    """The error line for the failures a command can meet, or None for a bug (shown as such)."""
    import sqlalchemy as sa
    from .engine.errors import RecordError
    from .installation import NotInitialised, SchemaBehind
    if isinstance(exc, RecordError):
        return exc.message.render()
    if isinstance(exc, NotInitialised):
        return str(exc)
    if isinstance(exc, SchemaBehind):
        return (f"the database schema is behind the definitions ({len(exc.steps)} change(s) pending); "
                f"run `crm migrate --plan` to review them, then `crm migrate --apply`")
    if isinstance(exc, sa.exc.OperationalError):
        return f"database error: {_reason(exc)}; check CRM_DATABASE_URL and that the database is running"
    if isinstance(exc, sa.exc.DBAPIError):  # the database refused (not a bug of ours wrapped by SQLAlchemy)
        return f"database error: {_reason(exc)}"
    return None


class CrmGroup(click.Group):
    """Turns any exception a command raises into one line and exit 1 (a traceback only at DEBUG)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if debug_enabled():
                raise
            line = _one_line(exc)
            if line is None:
                log.debug("unexpected error", exc_info=exc)
                line = (f"unexpected {type(exc).__name__}: {_reason(exc)} "
                        f"(run again with CRM_LOG_LEVEL=DEBUG for the traceback)")
            fail(line)


@click.group(cls=CrmGroup)
@click.option("--packs", envvar="CRM_PACKS", help="Packs to load (default: base).")
@click.option("--database", envvar="CRM_DATABASE_URL", help="Database URL (default: SQLite under instance/).")
@click.pass_context
def main(ctx: click.Context, packs: str | None, database: str | None) -> None:
    """A metadata-driven CRM."""
    configure_logging()
    ctx.obj = {"packs": packs, "database": database}


@main.command()
@click.option("--demo", is_flag=True, help="Also create demo users for each role and sample records.")
@click.pass_context
def init(ctx, demo: bool) -> None:
    """Create or upgrade the database for the installed packs (and the instance's secret key)."""
    from .installation import SECRET_KEY_FILE, ensure_secret_key, instance_path
    inst = _open(ctx, initialised=False)
    done = inst.migrate()
    console.print(f"Database ready: {len(done)} change(s) applied ({inst.db.url.render_as_string(hide_password=True)}).",
                  soft_wrap=True)
    if not os.environ.get("CRM_SECRET_KEY") and ensure_secret_key(instance_path()):
        console.print(f"Session key written to {instance_path() / SECRET_KEY_FILE} (mode 600; keep it private).",
                      soft_wrap=True, markup=False, highlight=False)
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
    from .web import create_app
    app = create_app(installation=_open(ctx))
    console.print(f"Serving on http://{host}:{port}  (API: /api, OpenAPI: /api/openapi.json)")
    app.run(host=host, port=port, threaded=True)


@main.group()
def definitions() -> None:
    """Work with definition files."""


@definitions.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Validate packs (or files inside packs); print `file: /pointer: message` for every problem."""
    from .engine import compile_runtime
    from .metadata.validate import validate_paths
    problems, checked = validate_paths(list(paths), compile_runtime)
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


@main.group("rollups")
def rollups_group() -> None:
    """Rollup fields: stored summaries of child records."""


@rollups_group.command("rebuild")
@click.argument("entities", nargs=-1)
@click.pass_context
def rollups_rebuild(ctx, entities: tuple[str, ...]) -> None:
    """Recompute the rollups of ENTITIES (default: all) for every record; report the drift corrected."""
    from .engine.rollups import rebuild
    inst = _open(ctx.parent.parent)
    having = sorted({er.name for er in inst.runtime.entities.values() if er.rollups})
    for name in entities:
        if name not in having:
            fail(f"{name!r} has no rollup fields; entities with rollups: {', '.join(having) or 'none'}")
    with inst.db.begin() as conn:
        report = rebuild(inst.runtime, conn, entities or None)
    table = Table(title="Rollups rebuilt")
    for column in ("entity", "field", "records", "corrected", "examples"):
        table.add_column(column)
    for row in report:
        table.add_row(row["entity"], row["field"], str(row["parents"]), str(row["corrected"]), " ".join(row["examples"]))
    console.print(table)
    corrected = sum(row["corrected"] for row in report)
    console.print(f"{corrected} stored value(s) corrected." if corrected else "No drift: every stored rollup was right.")


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
        fail(exc.message.render(), status=2)
    verdict = "[green]ALLOWED[/green]" if answer["allowed"] else "[red]DENIED[/red]"
    target = f"{entity} {record_id}" if record_id else entity
    console.print(f"{verdict}: {subject.username} ({subject.role}) {action} {target}" + (f" field {field}" if field else ""),
                  soft_wrap=True)
    for reason in answer["reasons"]:
        click.echo(f"  - {reason}")
    sys.exit(0 if answer["allowed"] else 1)


def _run(action, success: str) -> None:
    action()  # a RecordError becomes `error: <message>`, exit 1 (CrmGroup)
    console.print(success, markup=False, highlight=False)
