"""Users, teams and API tokens: the actors of the record service."""

from __future__ import annotations

import copy
import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .database import new_id, utcnow
from .errors import BadRequest, Conflict, NotFound, Unauthenticated
from .messages import Message

TOKEN_LIFETIME = timedelta(days=30)
#: The longest username the users table holds; a longer one cannot exist, so it is not looked up.
USERNAME_MAX = 100


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: what the record service needs to know about the caller."""

    id: str
    username: str
    role: str
    team: str | None
    locale: str = "en"
    #: Names of the actor's team and every team above it, when the look-up that made this Actor read
    #: them (token resolution does, in the same query); None: not known, Access reads them if needed.
    branch: frozenset[str] | None = None

    def as_expression_user(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role, "team": self.team}

    def as_json(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role, "team": self.team}


class Accounts:
    """Reads and writes users, teams and tokens."""

    def __init__(self, db: sa.Engine, tables: dict[str, sa.Table], roles=None, hasher: PasswordHasher | None = None):
        self.db, self.t, self.roles = db, tables, roles
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: dict[str, str] = {}  # shared with bound copies

    def bound(self, db) -> Accounts:
        """These accounts read and write through ``db`` (a unit of work) instead of the engine."""
        bound = copy.copy(self)
        bound.db = db
        return bound

    def _dummy(self) -> str:
        """Verified against when the username is unknown, so both failures take the same time."""
        if "hash" not in self._dummy_hash:
            self._dummy_hash["hash"] = self.hasher.hash("not a real password")
        return self._dummy_hash["hash"]

    # -- teams ---------------------------------------------------------------------------------
    def create_team(self, name: str, parent: str | None = None) -> str:
        teams = self.t["teams"]
        with self.db.begin() as conn:
            parent_id = None
            if parent:
                parent_id = conn.scalar(sa.select(teams.c.id).where(teams.c.name == parent))
                if parent_id is None:
                    raise NotFound("not_found", entity="team", id=parent)
            if conn.scalar(sa.select(teams.c.id).where(teams.c.name == name)):
                raise Conflict("bad_payload", detail=Message("team_exists", {"name": name}))
            team_id = new_id()
            conn.execute(teams.insert().values(id=team_id, name=name, parent_id=parent_id, created_at=utcnow()))
        return team_id

    def team_id(self, name: str) -> str | None:
        with self.db.connect() as conn:
            return conn.scalar(sa.select(self.t["teams"].c.id).where(self.t["teams"].c.name == name))

    # -- users ---------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str, team: str | None = None,
                    display_name: str | None = None, locale: str = "en") -> str:
        if self.roles is not None and role not in self.roles:
            raise BadRequest("bad_payload", detail=Message("unknown_role", {"name": role,
                                                                            "choices": ", ".join(sorted(self.roles))}))
        if not 1 <= len(username) <= USERNAME_MAX or "\x00" in username:
            raise BadRequest("bad_payload", detail=Message("username_length", {"max": USERNAME_MAX}))
        if len(password) < 8:
            raise BadRequest("bad_payload", detail=Message("password_length", {"min": 8}))
        users = self.t["users"]
        team_id = None
        if team:
            team_id = self.team_id(team)
            if team_id is None:
                raise NotFound("not_found", entity="team", id=team)
        user_id = new_id()
        try:
            with self.db.begin() as conn:
                conn.execute(users.insert().values(
                    id=user_id, username=username, display_name=display_name or username,
                    password_hash=self.hasher.hash(password), role=role, team_id=team_id, locale=locale,
                    active=True, created_at=utcnow()))
        except sa.exc.IntegrityError:
            raise Conflict("bad_payload", detail=Message("user_exists", {"name": username})) from None
        return user_id

    def deactivate_user(self, username: str) -> None:
        users = self.t["users"]
        with self.db.begin() as conn:
            result = conn.execute(users.update().where(users.c.username == username).values(active=False))
            if result.rowcount == 0:
                raise NotFound("not_found", entity="user", id=username)
            user_id = conn.scalar(sa.select(users.c.id).where(users.c.username == username))
            tokens = self.t["tokens"]
            conn.execute(tokens.update().where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
                         .values(revoked_at=utcnow()))

    def actor(self, user_id: str) -> Actor | None:
        users = self.t["users"]
        with self.db.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == user_id, users.c.active)).mappings().first()
        return None if row is None else Actor(row["id"], row["username"], row["role"], row["team_id"], row["locale"])

    def find_actor(self, username_or_id: str) -> Actor:
        """An active user by username or id (404 otherwise, also for a deactivated one)."""
        users = self.t["users"]
        with self.db.connect() as conn:
            row = conn.execute(sa.select(users).where(sa.or_(users.c.username == username_or_id,
                                                             users.c.id == username_or_id),
                                                      users.c.active)).mappings().first()
        if row is None:
            raise NotFound("not_found", entity="user", id=username_or_id)
        return Actor(row["id"], row["username"], row["role"], row["team_id"], row["locale"])

    def authenticate(self, username: str, password: str) -> Actor:
        """The active user with these credentials, or Unauthenticated. Throttling attempts is the
        interface's job (``web/throttle.py``): it decides before this runs whether one may try."""
        users = self.t["users"]
        with self.db.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first() \
                if len(username) <= USERNAME_MAX else None
        try:
            self.hasher.verify(row["password_hash"] if row else self._dummy(), password)
            if row is None or not row["active"]:
                raise VerificationError("unknown or inactive user")
        except (VerificationError, InvalidHashError):
            raise Unauthenticated("bad_credentials") from None
        return Actor(row["id"], row["username"], row["role"], row["team_id"], row["locale"])

    # -- tokens --------------------------------------------------------------------------------
    def issue_token(self, actor: Actor) -> str:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.begin() as conn:
            conn.execute(self.t["tokens"].insert().values(
                token_hash=_digest(token), user_id=actor.id, created_at=now, expires_at=now + TOKEN_LIFETIME))
        return token

    def resolve_token(self, token: str) -> Actor:
        """The active user holding this unrevoked, unexpired token (401 otherwise). Runs on every API
        request: one SELECT of just the columns an Actor needs, built once per pair of tables (see
        :func:`_token_query`) and bound by parameters."""
        query = _token_query(self.t["tokens"], self.t["users"], self.t["teams"])
        with self.db.connect() as conn:
            rows = conn.execute(query, {"digest": _digest(token), "now": utcnow()}).all()
        if not rows:
            raise Unauthenticated("unauthenticated")
        return Actor(*rows[0][:5], branch=frozenset(row.team_name for row in rows if row.team_name is not None))

    def revoke_token(self, token: str) -> None:
        tokens = self.t["tokens"]
        with self.db.begin() as conn:
            conn.execute(tokens.update().where(tokens.c.token_hash == _digest(token)).values(revoked_at=utcnow()))

    def user_exists(self, conn: sa.Connection, user_id: str) -> bool:
        users = self.t["users"]
        return conn.scalar(sa.select(users.c.id).where(users.c.id == user_id, users.c.active)) is not None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def _token_query(tokens: sa.Table, users: sa.Table, teams: sa.Table) -> sa.Select:
    """The token → Actor SELECT, built once per runtime's tables (a few runtimes per process at
    most: the cache is small and bounded). Rebuilding it per request cost more than running it.

    One row per team on the user's branch (their team and each team above it, by a recursive CTE),
    so permission checks that ask "is the caller in team X or below" need no second round trip."""
    valid = (tokens.c.token_hash == sa.bindparam("digest"), tokens.c.revoked_at.is_(None),
             tokens.c.expires_at > sa.bindparam("now"), users.c.active)
    up = (sa.select(teams.c.parent_id, teams.c.name)
          .join_from(tokens, users, tokens.c.user_id == users.c.id).join(teams, teams.c.id == users.c.team_id)
          .where(*valid).cte("branch", recursive=True))
    up = up.union_all(sa.select(teams.c.parent_id, teams.c.name).join(up, teams.c.id == up.c.parent_id))
    return (sa.select(users.c.id, users.c.username, users.c.role, users.c.team_id, users.c.locale,
                      up.c.name.label("team_name"))
            .join_from(tokens, users, tokens.c.user_id == users.c.id)
            .outerjoin(up, sa.true())
            .where(*valid))
