"""The floor of the HTTP benchmark: a minimal Flask app doing the engine's work for a rep by hand.

Served by gunicorn exactly like the engine app (``bench.http_floor:create_app()``), configured by
``FLOOR_DATABASE_URL``. Per request it does what the engine does for a sales rep, and nothing else:

* the bearer token resolved with ONE hand-written SELECT (token → user, not revoked, not expired,
  user active) of the columns it needs;
* ``GET /api/records/opportunity/<id>``: ``SELECT * ... WHERE id = :id AND owner = :me`` (the rep's
  scope ``own``), the row → JSON by hand (ISO dates, the formula ``weighted_amount`` inline, the
  rep's hidden fields ``cost``/``margin`` left out), with the lookups ``account_industry`` and
  ``account_region`` read in the same query (``LEFT JOIN account``, ``account_floor.py``) and the
  rep's read predicate on accounts (own or public pool) as a column: an account the rep may not
  read shows neither;
* ``GET /api/records/opportunity?filter[stage]=…&sort=-created_at&limit=50``: ``WHERE owner = :me AND
  stage = :s ORDER BY created_at DESC, id DESC LIMIT 51`` (the same join), the same JSON and keyset cursor;
* ``POST /api/records/opportunity``: the values checked by hand, in one transaction the account
  reference checked with the rep's read predicate (reading its industry and region in the same
  query), the row inserted, the account's rollups kept (lock on PostgreSQL, one aggregate, one
  update), the audit row inserted; 201 with the record;
* ``GET /api/meta/entities/opportunity``: the description as the role sees it, encoded once at
  start per role (the floor of a cached description).

Statements are built once, at start. Tables and the per-role descriptions come from the compiled
catalog (as the other floors take the engine's ``Table`` objects); nothing of the engine runs per request.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import simplejson
import sqlalchemy as sa
from flask import Flask, Response, request

from .account_floor import AccountFloor, hide_unreadable, lookup_columns, lookups_of

HIDDEN_FOR_REP = ("cost", "margin")
SOURCES = frozenset({"web_form", "ad", "event", "referral", "partner", "customer_service", "import", "canvassing",
                     "tender", "other"})
TYPES = frozenset({"new_business", "upsell", "renewal"})
AUDIT_SKIP = frozenset({"id", "version", "created_at", "created_by", "updated_at", "updated_by"})


def _json(value, status: int = 200, headers=None) -> Response:
    body = simplejson.dumps(value, use_decimal=True, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, mimetype="application/json", headers=headers)


def _error(status: int, code: str) -> Response:
    return _json({"error": {"code": code, "message": code, "fields": {}}}, status)


def _new_id() -> str:
    ms = time.time_ns() // 1_000_000  # a UUIDv7, as the engine's ids
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def _record(row) -> dict:
    """A row of the opportunity table as the API's JSON record for a rep, by hand."""
    d = hide_unreadable(dict(row._mapping))
    d["created_at"] = d["created_at"].astimezone(UTC).isoformat()
    d["updated_at"] = d["updated_at"].astimezone(UTC).isoformat()
    close = d["expected_close_date"]
    d["expected_close_date"] = close.isoformat() if close is not None else None
    amount, probability = d["amount"], d["probability"]
    d["weighted_amount"] = amount * probability / 100 if amount is not None and probability is not None else None
    del d["cost"]
    return d


def _cursor(row) -> str:
    payload = {"k": ["-created_at", "-id"], "v": [{"t": row.created_at.astimezone(UTC).isoformat()}, row.id]}
    text = simplejson.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _write(conn: sa.Connection):
    """A write transaction on ``conn``: on SQLite ``BEGIN IMMEDIATE`` (as the engine's writes; a
    deferred BEGIN that reads first cannot always upgrade to a write under concurrent writers)."""
    from crm_platform.engine.database import WRITE
    conn.info[WRITE] = True
    return conn.begin()


def create_app() -> Flask:
    from crm_platform.engine import compile_runtime, make_engine
    from crm_platform.metadata import load_catalog
    from crm_platform.metadata.model import ACTIONS
    from crm_platform.web.describe import describe_entity

    runtime = compile_runtime(load_catalog(os.environ.get("CRM_PACKS", "base")))
    db = make_engine(os.environ["FLOOR_DATABASE_URL"])
    er = runtime.entity("opportunity")
    t, accounts = er.table, runtime.entity("account").table
    users, tokens, audit = runtime.tables["users"], runtime.tables["tokens"], runtime.tables["audit"]

    who = (sa.select(users.c.id, users.c.role, users.c.team_id).join(tokens, tokens.c.user_id == users.c.id)
           .where(tokens.c.token_hash == sa.bindparam("h"), tokens.c.revoked_at.is_(None),
                  tokens.c.expires_at > sa.bindparam("now"), users.c.active))
    rep_reads = sa.or_(accounts.c.owner == sa.bindparam("me"), accounts.c.owner.is_(None))
    account_side = AccountFloor(runtime, db.dialect.name, rep_reads)
    with_lookups = account_side.select()
    by_id = with_lookups.where(t.c.id == sa.bindparam("id"), t.c.owner == sa.bindparam("me"))
    page = (with_lookups.where(t.c.owner == sa.bindparam("me"), t.c.stage == sa.bindparam("s"))
            .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(sa.bindparam("n")))
    account_ok = sa.select(*lookup_columns(accounts)).where(accounts.c.id == sa.bindparam("v"), rep_reads)
    insert, audit_insert = t.insert(), audit.insert()
    descriptions = {}
    for role, by_entity in runtime.policies.items():
        policy = by_entity["opportunity"]
        actions = {a: policy.scope(a) for a in ACTIONS}
        body = simplejson.dumps(describe_entity(er.entity, policy.hidden, policy.readonly, actions),
                                ensure_ascii=False, separators=(",", ":"), default=list)
        descriptions[role] = body.encode()

    app = Flask(__name__)

    def caller(conn):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        user = conn.execute(who, {"h": digest, "now": datetime.now(UTC)}).first()
        return user if user is not None and user.role == "rep" else None  # the floor serves reps only

    @app.get("/api/records/opportunity/<record_id>")
    def get_record(record_id):
        with db.connect() as conn:
            user = caller(conn)
            if user is None:
                return _error(401, "unauthenticated")
            row = conn.execute(by_id, {"id": record_id, "me": user.id}).first()
        if row is None:
            return _error(404, "not_found")
        return _json(_record(row), headers={"ETag": f'"{row.version}"'})

    @app.get("/api/records/opportunity")
    def list_records():
        limit = int(request.args.get("limit", 50))
        with db.connect() as conn:
            user = caller(conn)
            if user is None:
                return _error(401, "unauthenticated")
            rows = conn.execute(page, {"me": user.id, "s": request.args["filter[stage]"], "n": limit + 1}).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return _json({"data": [_record(r) for r in rows],
                      "paging": {"limit": limit, "has_more": more, "next_cursor": _cursor(rows[-1]) if more else None}})

    @app.post("/api/records/opportunity")
    def create_record():
        d = simplejson.loads(request.get_data(), use_decimal=True)
        errors = {}
        name = d["name"].strip() if type(d.get("name")) is str else None
        if not name or len(name) > 200:
            errors["name"] = ["required"]
        amount = d.get("amount")
        if type(amount) not in (int, Decimal) or amount < 0 or amount != round(amount, 2):
            errors["amount"] = ["type"]
        probability = d.get("probability", 10)
        if type(probability) not in (int, Decimal) or not 0 <= probability <= 100:
            errors["probability"] = ["type"]
        try:
            close = date.fromisoformat(d["expected_close_date"])
        except (KeyError, TypeError, ValueError):
            errors["expected_close_date"] = ["date"]
        if d.get("source") not in SOURCES:
            errors["source"] = ["choice"]
        if d.get("opportunity_type", "new_business") not in TYPES:
            errors["opportunity_type"] = ["choice"]
        next_step = d["next_step"].strip() if type(d.get("next_step")) is str else None
        if next_step is not None and len(next_step) > 500:
            errors["next_step"] = ["max_length"]
        description = d.get("description")
        if description is not None and (type(description) is not str or len(description) > 5000):
            errors["description"] = ["max_length"]
        with db.connect() as conn, _write(conn):
            user = caller(conn)
            if user is None:
                return _error(401, "unauthenticated")
            account = conn.execute(account_ok, {"v": d.get("account"), "me": user.id}).first()
            if account is None:
                errors["account"] = ["reference"]
            if errors:
                return _json({"error": {"code": "invalid", "message": "invalid", "fields": errors}}, 422)
            now, record_id = datetime.now(UTC), _new_id()
            row = {"id": record_id, "version": 1, "owner": user.id, "team": user.team_id, "stage": "initial_contact",
                   "created_at": now, "created_by": user.id, "updated_at": now, "updated_by": user.id,
                   "name": name, "account": d["account"], "primary_contact": None, "decision_maker": None,
                   "opportunity_type": d.get("opportunity_type", "new_business"), "amount": amount,
                   "probability": probability, "expected_close_date": close, "source": d["source"],
                   "next_step": next_step, "competitors": None, "description": description, "lost_reason": None,
                   "cost": None}
            conn.execute(insert, row)
            account_side.keep_rollups(conn, d["account"])
            out = {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in row.items()}
            changes = {k: [None, float(v) if isinstance(v, Decimal) else v] for k, v in out.items()
                       if v is not None and k not in AUDIT_SKIP}  # the JSON column stores numbers
            conn.execute(audit_insert, {"entity": "opportunity", "record_id": record_id, "version": 1,
                                        "action": "create", "actor_id": user.id, "at": now, "changes": changes})
        del out["cost"]
        out.update(lookups_of(account))
        out["weighted_amount"] = amount * probability / 100
        return _json(out, 201, {"Location": f"/api/records/opportunity/{record_id}", "ETag": '"1"'})

    @app.get("/api/meta/entities/opportunity")
    def describe():
        with db.connect() as conn:
            user = caller(conn)
        if user is None:
            return _error(401, "unauthenticated")
        return Response(descriptions[user.role], mimetype="application/json")

    return app
