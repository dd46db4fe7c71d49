"""Users, teams and API tokens: the actors of the record service."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .database import new_id, utcnow
from .errors import BadRequest, Conflict, NotFound, TooManyAttempts, Unauthenticated

TOKEN_LIFETIME = timedelta(days=30)
#: Failed logins allowed per username, and per source address, within the window.
MAX_FAILURES_PER_USER, MAX_FAILURES_PER_SOURCE = 5, 30
FAILURE_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: what the record service needs to know about the caller."""

    id: str
    username: str
    role: str
    team: str | None
    locale: str = "en"

    def as_expression_user(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role, "team": self.team}

    def as_json(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role, "team": self.team}


class Accounts:
    """Reads and writes users, teams and tokens."""

    def __init__(self, db: sa.Engine, tables: dict[str, sa.Table], roles=None, hasher: PasswordHasher | None = None):
        self.db, self.t, self.roles = db, tables, roles
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    def _dummy(self) -> str:
        """Verified against when the username is unknown, so both failures take the same time."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash("not a real password")
        return self._dummy_hash

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
                raise Conflict("bad_payload", detail=f"a team named {name!r} exists already")
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
            raise BadRequest("bad_payload", detail=f"unknown role {role!r} (known: {', '.join(sorted(self.roles))})")
        if len(password) < 8:
            raise BadRequest("bad_payload", detail="a password needs at least 8 characters")
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
            raise Conflict("bad_payload", detail=f"a user named {username!r} exists already") from None
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

    def authenticate(self, username: str, password: str, source: str = "") -> Actor:
        """The user for these credentials. After too many failures for the username (or from the
        source address) within the window, refuses without checking (429) until the window passes."""
        users, failures = self.t["users"], self.t["login_failures"]
        keys = {f"user:{username}": MAX_FAILURES_PER_USER, f"source:{source}": MAX_FAILURES_PER_SOURCE}
        since = utcnow() - FAILURE_WINDOW
        with self.db.connect() as conn:
            for key, limit in keys.items():
                recent = conn.scalar(sa.select(sa.func.count()).select_from(failures)
                                     .where(failures.c.key == key, failures.c.at > since))
                if recent >= limit:
                    raise TooManyAttempts("too_many_attempts", minutes=int(FAILURE_WINDOW.total_seconds() // 60))
            row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        try:
            self.hasher.verify(row["password_hash"] if row else self._dummy(), password)
            if row is None or not row["active"]:
                raise VerificationError("unknown or inactive user")
        except (VerificationError, InvalidHashError):
            with self.db.begin() as conn:
                conn.execute(failures.insert(), [{"key": key, "at": utcnow()} for key in keys])
            raise Unauthenticated("bad_credentials") from None
        with self.db.begin() as conn:
            conn.execute(failures.delete().where(failures.c.key == f"user:{username}"))
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
        tokens, users = self.t["tokens"], self.t["users"]
        query = (sa.select(users).join(tokens, tokens.c.user_id == users.c.id)
                 .where(tokens.c.token_hash == _digest(token), tokens.c.revoked_at.is_(None),
                        tokens.c.expires_at > utcnow(), users.c.active))
        with self.db.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise Unauthenticated("unauthenticated")
        return Actor(row["id"], row["username"], row["role"], row["team_id"], row["locale"])

    def revoke_token(self, token: str) -> None:
        tokens = self.t["tokens"]
        with self.db.begin() as conn:
            conn.execute(tokens.update().where(tokens.c.token_hash == _digest(token)).values(revoked_at=utcnow()))

    def user_exists(self, conn: sa.Connection, user_id: str) -> bool:
        users = self.t["users"]
        return conn.scalar(sa.select(users.c.id).where(users.c.id == user_id, users.c.active)) is not None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
