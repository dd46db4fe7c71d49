"""Login throttling with ``limits``, the rate-limiting library Flask-Limiter is built on: its storage
and its moving-window strategy, called from the two login views only.

Storage is Redis when ``CRM_REDIS_URL`` is set (every gunicorn worker and every host shares one
count) and process memory otherwise (the embedded default: one process). Flask-Limiter itself is
not installed as an extension: its hooks run before and after *every* request, which measurably
slowed every API call to throttle two endpoints.

- **Per username** (the lock-out): each attempt takes its place in the window *before* the password
  is checked — one atomic hit — so twenty parallel guesses cannot all be evaluated: the sixth and
  later get 429 whatever the password. A successful login clears the username's window.
- **Per client address**: failed attempts only, so an office behind one NAT address is not locked
  out by its own successful logins. The address is ``request.remote_addr``, which honours
  ``X-Forwarded-For`` only through ``ProxyFix`` with the configured number of trusted proxies
  (``CRM_PROXY_HOPS``); with none configured a client cannot spoof it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from crm_platform.engine import Actor
from crm_platform.engine.errors import TooManyAttempts, Unauthenticated

#: Failed attempts allowed in a moving window of 15 minutes: per username, and per client address.
USER_LIMIT, ADDRESS_LIMIT = "5 per 15 minutes", "30 per 15 minutes"


@dataclass(frozen=True)
class LoginThrottle:
    strategy: MovingWindowRateLimiter
    per_user: RateLimitItem
    per_address: RateLimitItem
    scope: str  # one installation's keys, apart from any other sharing the storage

    def authenticate(self, username: str, check: Callable[[], Actor]) -> Actor:
        """``check()`` (which verifies the password) if the username and address have attempts left."""
        strategy = self.strategy
        user = (self.scope, "login-user", _digest(username))
        address = (self.scope, "login-address", request.remote_addr or "unknown")
        if not strategy.test(self.per_address, *address):
            raise self._too_many(self.per_address)
        if not strategy.hit(self.per_user, *user):
            raise self._too_many(self.per_user)
        try:
            actor = check()
        except Unauthenticated:
            strategy.hit(self.per_address, *address)
            raise
        strategy.clear(self.per_user, *user)
        return actor

    @staticmethod
    def _too_many(item: RateLimitItem) -> TooManyAttempts:
        return TooManyAttempts("too_many_attempts", minutes=max(1, item.get_expiry() // 60))


def _digest(username: str) -> str:
    """Usernames of any length and content make fixed-size keys."""
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


def init_app(app: Flask, redis_url: str | None, scope: str) -> None:
    strategy = MovingWindowRateLimiter(storage_from_string(redis_url or "memory://"))
    app.extensions["crm_login_throttle"] = LoginThrottle(strategy, parse(USER_LIMIT), parse(ADDRESS_LIMIT),
                                                         f"crm-{scope}")


def login_throttle() -> LoginThrottle:
    return current_app.extensions["crm_login_throttle"]
