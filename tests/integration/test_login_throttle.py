"""Login throttling shared by every web process: with ``CRM_REDIS_URL`` two apps (two gunicorn
workers, two hosts) count one username's failures together. Runs when Redis answers; says so otherwise."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from crm_platform.web import create_app

REDIS_URL = "redis://127.0.0.1:6379/13"


def _redis_unavailable() -> str | None:
    try:
        import redis
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:  # any failure to connect: not available here
        return f"{type(exc).__name__}: {exc}"


REDIS_UNAVAILABLE = _redis_unavailable()
needs_redis = pytest.mark.skipif(REDIS_UNAVAILABLE is not None,
                                 reason=f"Redis not reachable at {REDIS_URL} ({REDIS_UNAVAILABLE})")


@pytest.fixture
def two_workers(installation, org):
    """Two apps over one installation and one Redis, as two gunicorn workers would be. A unique
    database URL per test keeps their keys apart from every other test run on the shared Redis."""
    settings = dataclasses.replace(installation.settings, redis_url=REDIS_URL,
                                   database_url=f"{installation.settings.database_url}#{secrets.token_hex(6)}")
    installation.settings = settings
    return [create_app(installation=installation).test_client() for _ in range(2)]


@needs_redis
def test_two_workers_share_one_count_of_failures(two_workers):
    first, second = two_workers
    for n in range(5):
        worker = (first, second)[n % 2]
        assert worker.post("/api/auth/token", json={"username": "rep", "password": "wrong"}).status_code == 401
    for worker in (first, second):
        response = worker.post("/api/auth/token", json={"username": "rep", "password": "rep-password"})
        assert response.status_code == 429
        assert response.json["error"]["code"] == "rate_limited"


@needs_redis
def test_a_success_on_one_worker_clears_the_count_on_the_other(two_workers):
    first, second = two_workers
    for _ in range(4):
        first.post("/api/auth/token", json={"username": "rep", "password": "wrong"})
    assert second.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200
    for _ in range(4):
        first.post("/api/auth/token", json={"username": "rep", "password": "wrong"})
    assert second.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200
