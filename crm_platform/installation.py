"""One installation: its settings, database, catalog and compiled runtime.

The app factory, the CLI and (later) workers each build one; nothing here is a module global.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher

from .engine import Accounts, Actor, RecordService, Runtime, compile_runtime, make_engine
from .engine import migration
from .engine.hooks import NO_HOOKS, RecordHooks
from .metadata import load_catalog


@dataclass(frozen=True)
class Settings:
    database_url: str
    packs: str = "base"
    secret_key: str | None = None
    redis_url: str | None = None
    secure_cookies: bool = False  # CRM_SECURE_COOKIES=1 behind HTTPS: cookies only over TLS

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        instance = Path(os.environ.get("CRM_INSTANCE_PATH", "instance"))
        values = {
            "database_url": os.environ.get("CRM_DATABASE_URL") or f"sqlite:///{(instance / 'crm.db').resolve()}",
            "packs": os.environ.get("CRM_PACKS", "base"),
            "secret_key": os.environ.get("CRM_SECRET_KEY"),
            "redis_url": os.environ.get("CRM_REDIS_URL") or None,
            "secure_cookies": os.environ.get("CRM_SECURE_COOKIES", "").lower() in ("1", "true", "yes"),
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
        if settings.database_url.startswith("sqlite:///"):
            Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        runtime = compile_runtime(load_catalog(settings.packs))
        return cls(settings, make_engine(settings.database_url, **(engine_options or {})), runtime)

    def records(self, actor: Actor | None) -> RecordService:
        return RecordService(self.runtime, self.db, actor, self.hooks)

    def plan(self) -> list[migration.Step]:
        return migration.plan(self.runtime, self.db)

    def migrate(self, drop_archived: bool = False) -> list[migration.Step]:
        done = migration.apply(self.runtime, self.db, self.plan(), drop_archived)
        self.record_version()
        return done

    def record_version(self) -> None:
        meta = self.runtime.tables["meta"]
        with self.db.begin() as conn:
            conn.execute(meta.delete().where(meta.c.key == "catalog_version"))
            conn.execute(meta.insert().values(key="catalog_version", value=self.runtime.version))

    def check_schema(self) -> None:
        """Refuse to serve on a database that lacks what the definitions need."""
        behind = migration.pending(self.plan())
        if behind:
            raise SchemaBehind(behind)
