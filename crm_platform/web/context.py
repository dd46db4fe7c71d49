"""Request-scoped access to the installation, the request's unit of work and the caller."""

from __future__ import annotations

from flask import Flask, current_app, g, request

from crm_platform.engine import Access, Accounts, Actor, RecordService, UnitOfWork
from crm_platform.engine.errors import Unauthenticated
from crm_platform.installation import Installation


def installation() -> Installation:
    return current_app.extensions["crm"]


def database() -> UnitOfWork:
    """The request's unit of work: one pooled connection for every read and write of the request,
    checked out on first use and returned when the request ends."""
    if "db" not in g:
        g.db = UnitOfWork(installation().db)
    return g.db


def accounts() -> Accounts:
    return installation().accounts.bound(database())


def actor() -> Actor:
    """The authenticated caller (bearer token); 401 if there is none."""
    if "actor" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("unauthenticated")
        g.actor = accounts().resolve_token(token.strip())
    return g.actor


def access(subject: Actor | None = None) -> Access:
    inst = installation()
    return Access(inst.runtime, database(), subject or actor())


def records() -> RecordService:
    return installation().records(actor(), database())


def locale() -> str:
    """The caller's language: the Accept-Language header if it names one we have, else the user's."""
    best = request.accept_languages.best_match(["en", "zh"]) if request.accept_languages else None
    return best or (g.actor.locale if "actor" in g else "en")


def _release(_exc=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_release)
