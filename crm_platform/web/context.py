"""Request-scoped access to the installation and the caller."""

from __future__ import annotations

from flask import current_app, g, request

from crm_platform.engine import Actor, RecordService
from crm_platform.engine.errors import Unauthenticated
from crm_platform.installation import Installation


def installation() -> Installation:
    return current_app.extensions["crm"]


def actor() -> Actor:
    """The authenticated caller (bearer token); 401 if there is none."""
    if "actor" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("unauthenticated")
        g.actor = installation().accounts.resolve_token(token.strip())
    return g.actor


def records() -> RecordService:
    return installation().records(actor())


def locale() -> str:
    """The caller's language: the Accept-Language header if it names one we have, else the user's."""
    best = request.accept_languages.best_match(["en", "zh"]) if request.accept_languages else None
    return best or (g.actor.locale if "actor" in g else "en")
