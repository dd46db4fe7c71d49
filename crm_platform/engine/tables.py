"""SQLAlchemy tables: the platform's own (users, teams, audit, ...) and one per entity.

Entity tables are derived from the catalog; each column's ``info["field"]`` holds its FieldDef so
query and permission code can get from a column back to its definition.
"""

from __future__ import annotations

import sqlalchemy as sa

from crm_platform.metadata.model import EntityDef

from .columns import UTCDateTime
from .fieldtypes import TYPES

ID = sa.String(36)


def system_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """The tables every installation has, whatever the definitions say."""
    teams = sa.Table(
        "crm_teams", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("parent_id", ID, sa.ForeignKey("crm_teams.id"), nullable=True, index=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    users = sa.Table(
        "crm_users", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(63), nullable=False),
        sa.Column("team_id", ID, sa.ForeignKey("crm_teams.id"), nullable=True, index=True),
        sa.Column("locale", sa.String(10), nullable=False, server_default="en"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    tokens = sa.Table(
        "crm_tokens", metadata,
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", ID, sa.ForeignKey("crm_users.id"), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    audit = sa.Table(
        "crm_audit", metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(63), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Index("ix_crm_audit_record", "entity", "record_id", "id"),
    )
    counters = sa.Table(
        "crm_counters", metadata,
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    meta = sa.Table(
        "crm_meta", metadata,
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    files = sa.Table(
        "crm_files", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(127), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", ID, nullable=True),
    )
    return {"teams": teams, "files": files, "users": users, "tokens": tokens, "audit": audit, "counters": counters, "meta": meta}


def entity_table(entity: EntityDef, metadata: sa.MetaData) -> sa.Table:
    """The table for one entity: system columns, then one or more columns per stored field."""
    name = entity.name
    columns: list = [
        sa.Column("id", ID, primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    ]
    if entity.has_owner:
        columns += [sa.Column("owner", ID, nullable=True), sa.Column("team", ID, nullable=True)]
    if entity.staged:
        columns.append(sa.Column("stage", sa.String(63), nullable=False))
    columns += [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", ID, nullable=True),
    ]
    for f in entity.fields:
        if f.stored:
            columns += TYPES[f.type].columns(f)
    # "Newest first" lists, overall and per owner / team / stage. The trailing id completes the
    # ORDER BY created_at, id of keyset pagination, so the database never sorts.
    indexes = [sa.Index(f"ix_{name}_created", "created_at", "id")]
    if entity.has_owner:
        indexes += [sa.Index(f"ix_{name}_owner_created", "owner", "created_at", "id"),
                    sa.Index(f"ix_{name}_team_created", "team", "created_at", "id")]
    if entity.staged:
        indexes.append(sa.Index(f"ix_{name}_stage_created", "stage", "created_at", "id"))
        if entity.has_owner:  # a rep's / a team's list of one stage, newest first
            indexes += [sa.Index(f"ix_{name}_owner_stage_created", "owner", "stage", "created_at", "id"),
                        sa.Index(f"ix_{name}_team_stage_created", "team", "stage", "created_at", "id")]
    stored = {c.name for c in columns}
    indexes += _list_view_indexes(entity, stored, {tuple(i.expressions) for i in indexes})
    for f in entity.fields:
        if not f.stored:
            continue
        if f.unique:
            indexes.append(sa.Index(f"ux_{name}_{f.name}", f.name, unique=True))
        elif f.indexed or f.type in ("reference", "user", "file", "autonumber"):
            indexes.append(sa.Index(f"ix_{name}_{f.name}", f.name))
    for rule in entity.duplicate_rules:  # unless an index over exactly those fields exists already
        if not any(tuple(str(e) for e in i.expressions) == tuple(rule.fields) for i in indexes):
            indexes.append(sa.Index(f"ix_{name}_dup_{rule.name}", *rule.fields))
    return sa.Table(name, metadata, *columns, *indexes)


def _list_view_indexes(entity: EntityDef, stored: set[str], have: set[tuple]) -> list[sa.Index]:
    """One index per list view and record scope: (owner | team | nothing, the view's equality filters,
    its sort keys, id) — the order in which a user's page of that view is read, so the database seeks
    to the first row and reads the page off the index. Owned entities are read under scope ``own``
    (``owner = :me``), ``team``/``subtree`` (``team = :t`` / ``team IN (...)``) and ``all``.
    An index whose columns begin another one's is left out (the longer one serves it)."""
    scopes = (("owner",), ("team",), ()) if entity.has_owner else ((),)
    wanted: dict[tuple[str, ...], str] = {}
    for view in entity.list_views.values():
        filters = tuple(k for k, v in view.filters.items() if k in stored and not isinstance(v, (dict, list)))
        sort = tuple(k.lstrip("-") for k in (view.sort or entity.default_sort or ("-created_at",)))
        if not all(k in stored for k in sort):
            continue  # e.g. a formula: computed on read, not sortable in SQL
        keys = tuple(dict.fromkeys(filters + tuple(k for k in sort if k != "id") + ("id",)))
        for scope in scopes:
            wanted.setdefault(scope + keys, f"{scope[0] if scope else 'all'}_{view.name}")
    have = {tuple(str(e) for e in cols) for cols in have}
    out = []
    for cols, label in wanted.items():
        if any(other[:len(cols)] == cols for other in have | (set(wanted) - {cols})):
            continue
        out.append(sa.Index(_index_name(f"ix_{entity.name}_lv_{label}"), *cols))
    return out


def _index_name(name: str) -> str:
    """Index names fit PostgreSQL's 63 characters (a long one is cut and made unique by a hash)."""
    if len(name) <= 63:
        return name
    import hashlib
    return f"{name[:54]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
