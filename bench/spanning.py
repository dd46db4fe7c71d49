"""What the benchmarks of definitions that span records (issue 7) share: variant catalogs and bulk loading.

Each of those benchmarks compares the base pack with a VARIANT of it that lacks exactly the feature
measured (a rollup, two lookups, ten validation rules), so the floor is the engine itself doing the
same write or list without that feature. A variant is a copy of the base pack in a temporary folder
with some entity documents edited, loaded like any pack: what is measured is what an installation
with that pack would run, not a mock-up.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import sqlalchemy as sa

#: entity name → an edit of its (parsed) base document, in place.
Edits = dict[str, Callable[[dict], None]]


def base_variant(folder: Path, edits: Edits):
    """The base pack copied to ``folder/base`` with ``edits`` applied to its entity documents; its catalog."""
    from crm_platform.metadata import load_catalog
    from crm_platform.metadata.loader import builtin_definitions
    pack = folder / "base"
    shutil.copytree(builtin_definitions() / "base", pack)
    for entity, edit in edits.items():
        path = pack / "entities" / f"{entity}.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        edit(document)
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return load_catalog([str(pack)])


def base_catalog():
    from crm_platform.metadata import load_catalog
    return load_catalog("base")


def drop_fields(*names: str) -> Callable[[dict], None]:
    """An edit removing fields, and every list-view column naming them."""
    def edit(document: dict) -> None:
        document["fields"] = [f for f in document["fields"] if f["name"] not in names]
        for view in document.get("list_views", {}).values():
            view["columns"] = [c for c in view["columns"] if c not in names]
    return edit


def drop_rollups(*names: str) -> Callable[[dict], None]:
    """An edit turning rollup fields into plain stored fields (same column, kept by nobody)."""
    def edit(document: dict) -> None:
        for f in document["fields"]:
            if f["name"] in names:
                del f["rollup"]
    return edit


def open_installation(url: str, catalog, options: dict | None = None, *, migrate: bool = True):
    """An installation of ``catalog`` on ``url`` (argon2's cheapest profile: bench passwords don't matter)."""
    from argon2 import PasswordHasher, profiles

    from crm_platform.engine import compile_runtime, make_engine
    from crm_platform.installation import Installation, Settings
    installation = Installation(Settings(database_url=url), make_engine(url, **(options or {})),
                                compile_runtime(catalog), password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    if migrate:
        installation.migrate()
    return installation


def table_shape(table: sa.Table) -> tuple:
    """Columns and indexes of a table: two runtimes with equal shapes can share its rows."""
    return (tuple(c.name for c in table.c), tuple(sorted((i.name, tuple(c.name for c in i.columns))
                                                           for i in table.indexes)))


def bulk_load(db: sa.Engine, table: sa.Table, columns: Sequence[str], rows: Iterable[tuple],
              say: Callable[[str], None], batch: int = 50_000) -> int:
    """Load generated rows (tuples in ``columns`` order) fast: the table's indexes dropped during the
    load and rebuilt after, COPY on PostgreSQL, batched executemany elsewhere. Never timed. Returns
    how many rows were loaded."""
    t0, count = time.monotonic(), 0
    with db.begin() as conn:
        for index in table.indexes:
            index.drop(conn)
        if db.dialect.name == "postgresql":
            cursor = conn.connection.driver_connection.cursor()
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for count, values in enumerate(rows, 1):
                    copy.write_row(values)
        else:
            insert, pending = table.insert(), []
            for count, values in enumerate(rows, 1):
                pending.append(dict(zip(columns, values)))
                if len(pending) == batch:
                    conn.execute(insert, pending)
                    pending = []
            if pending:
                conn.execute(insert, pending)
        for index in table.indexes:
            index.create(conn)
    with db.begin() as conn:
        conn.execute(sa.text(f"ANALYZE {table.name}"))
    say(f"loaded {count:,} {table.name} rows and their indexes in {time.monotonic() - t0:.0f}s")
    return count
