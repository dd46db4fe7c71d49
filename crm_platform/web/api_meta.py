"""Metadata for clients: which entities exist and how each looks to the caller."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from crm_platform.engine import Access
from crm_platform.engine.errors import NotFound
from crm_platform.metadata.model import ACTIONS

from .context import access as request_access
from .context import installation
from .describe import DescriptionCache, describe_entity

bp = Blueprint("api_meta", __name__, url_prefix="/api/meta")
CACHE = "crm_descriptions"  # app.extensions key of this app's DescriptionCache


@bp.record_once
def _init(state) -> None:
    state.app.extensions[CACHE] = DescriptionCache()


def _access() -> Access:
    return request_access()  # the caller's access over the request's unit of work


@bp.get("/entities")
def list_entities():
    """The entities the caller may read (or create, or see a pool of)."""
    access, runtime = _access(), installation().runtime
    data = [{"name": er.name, "label": dict(er.entity.label)} for er in runtime.entities.values()
            if access.sees_entity(er)]
    return jsonify({"data": data, "version": runtime.version})


@bp.get("/entities/<entity>")
def get_entity(entity: str):
    """The entity as this caller may see it: hidden fields absent, read-only fields marked.
    Encoded once per catalog version and role, then served as bytes with an ETag."""
    access = _access()
    runtime = installation().runtime
    er = runtime.entity(entity)
    if not access.sees_entity(er):
        raise NotFound("unknown_entity", entity=entity)
    policy = access.policy(er)

    def build() -> bytes:
        actions = {a: policy.scope(a) for a in ACTIONS}
        return current_app.json.dumps(describe_entity(er.entity, policy.hidden, policy.readonly, actions)).encode()

    body, etag = current_app.extensions[CACHE].get(runtime.version, policy.role, er.name, build)
    if request.if_none_match and request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers={"ETag": etag})
    return Response(body, mimetype="application/json", headers={"ETag": etag})
