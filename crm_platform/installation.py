"""One installation: its settings, database, catalog and compiled runtime.

The app factory, the CLI and (later) workers each build one; nothing here is a module global.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher

from .engine import Accounts, Actor, RecordService, Runtime, UnitOfWork, compile_runtime, make_engine
from .engine import migration, rollups
from .engine.hooks import NO_HOOKS, RecordHooks
from .metadata import load_catalog

#: the file under the instance folder that keeps the session-signing key when CRM_SECRET_KEY is unset
SECRET_KEY_FILE = "secret_key"


def instance_path() -> Path:
    """The instance folder: ``CRM_INSTANCE_PATH``, default ``instance/`` (the SQLite file, the secret key)."""
    return Path(os.environ.get("CRM_INSTANCE_PATH", "instance"))


def read_secret_key(instance: Path) -> str | None:
    """The key `crm init` wrote into the instance folder, if any."""
    path = instance / SECRET_KEY_FILE
    return (path.read_text(encoding="ascii").strip() or None) if path.is_file() else None


def ensure_secret_key(instance: Path) -> bool:
    """Write a random key to ``instance/secret_key`` (mode 0600) unless one is there; True if written.
    Sessions then survive restarts, and every process of the installation signs with the same key."""
    instance.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(instance / SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(secrets.token_hex(32) + "\n")
    return True


@dataclass(frozen=True)
class Settings:
    database_url: str
    packs: str = "base"
    secret_key: str | None = field(default=None, repr=False)
    redis_url: str | None = None
    secure_cookies: bool = False  # CRM_SECURE_COOKIES=1 behind HTTPS: cookies only over TLS
    proxy_hops: int = 0  # CRM_PROXY_HOPS: trusted reverse proxies in front (X-Forwarded-* honoured that deep)

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        instance = instance_path()
        values = {
            "database_url": os.environ.get("CRM_DATABASE_URL") or f"sqlite:///{(instance / 'crm.db').resolve()}",
            "packs": os.environ.get("CRM_PACKS", "base"),
            "secret_key": os.environ.get("CRM_SECRET_KEY") or read_secret_key(instance),
            "redis_url": os.environ.get("CRM_REDIS_URL") or None,
            "secure_cookies": os.environ.get("CRM_SECURE_COOKIES", "").lower() in ("1", "true", "yes"),
            "proxy_hops": int(os.environ.get("CRM_PROXY_HOPS") or 0),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class SchemaBehind(RuntimeError):
    """The database does not yet have what the definitions need."""

    def __init__(self, steps):
        self.steps = steps
        listing = "\n".join(f"  {s}" for s in steps)
        super().__init__(f"the database schema is behind the definitions; run `crm migrate --plan` "
                         f"then `crm migrate --apply`:\n{listing}")


class NotInitialised(RuntimeError):
    """The database has none of the platform's tables: `crm init` has not run against it."""

    def __init__(self, url: str):
        self.url = url
        super().__init__(f"the database at {url} has no CRM tables yet; run `crm init` first")


@dataclass
class Installation:
    settings: Settings
    db: sa.Engine
    runtime: Runtime
    hooks: RecordHooks = NO_HOOKS
    password_hasher: PasswordHasher | None = None
    accounts: Accounts = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = Accounts(self.db, self.runtime.tables, self.runtime.catalog.roles, self.password_hasher)

    @classmethod
    def open(cls, settings: Settings, engine_options: dict | None = None) -> Installation:
        """Load and check the definitions (raises DefinitionError with every problem), connect."""
        runtime = compile_runtime(load_catalog(settings.packs))
        return cls(settings, make_engine(settings.database_url, **(engine_options or {})), runtime)

    def records(self, actor: Actor | None, db: sa.Engine | UnitOfWork | None = None) -> RecordService:
        """The record service for ``actor``, on ``db`` (a request's unit of work) or the engine."""
        return RecordService(self.runtime, db or self.db, actor, self.hooks)

    def plan(self) -> list[migration.Step]:
        return migration.plan(self.runtime, self.db)

    def make_folder(self) -> None:
        """Create the folder of a SQLite file (only `crm init` / migrate do: nothing else creates files)."""
        if self.db.url.get_backend_name() == "sqlite" and self.db.url.database not in (None, "", ":memory:"):
            Path(self.db.url.database).parent.mkdir(parents=True, exist_ok=True)

    def migrate(self, drop_archived: bool = False) -> list[migration.Step]:
        self.make_folder()
        done = migration.apply(self.runtime, self.db, self.plan(), drop_archived)
        added = {(s.table, s.name) for s in done if s.kind == "add_column"}
        new_rollups = [(name, f.name) for name, er in self.runtime.entities.items() for f in er.rollups
                       if (name, f.name) in added]
        if new_rollups:  # a new rollup starts right: computed for every existing parent
            with self.db.begin() as conn:
                rollups.rebuild(self.runtime, conn, fields=new_rollups)
        followers = [er for name, er in self.runtime.entities.items() if (name, "owner") in added
                     and er.entity.follows_owner]
        if followers:  # details that now carry their parent's owner and team: copy them
            with self.db.begin() as conn:
                for er in followers:
                    parent = er.entity.parent
                    master = self.runtime.entities[parent.target].table
                    link = master.c.id == er.table.c[parent.name]
                    conn.execute(er.table.update().values(
                        owner=sa.select(master.c.owner).where(link).scalar_subquery(),
                        team=sa.select(master.c.team).where(link).scalar_subquery()))
        self.record_version()
        return done

    def record_version(self) -> None:
        meta = self.runtime.tables["meta"]
        with self.db.begin() as conn:
            conn.execute(meta.delete().where(meta.c.key == "catalog_version"))
            conn.execute(meta.insert().values(key="catalog_version", value=self.runtime.version))

    def check_initialised(self) -> None:
        """Raise NotInitialised if `crm init` never ran here, without creating anything: a SQLite file
        that does not exist is not opened (connecting would create it, empty)."""
        url = self.db.url
        shown = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
                and not Path(url.database).is_file():
            raise NotInitialised(shown)
        if not sa.inspect(self.db).has_table(self.runtime.tables["meta"].name):
            raise NotInitialised(shown)

    def check_schema(self) -> None:
        """Refuse to serve on a database that lacks what the definitions need."""
        behind = migration.pending(self.plan())
        if behind:
            raise SchemaBehind(behind)
