"""Metadata for clients: which entities exist and how each looks to the caller."""

from __future__ import annotations

from flask import Blueprint, jsonify

from crm_platform.engine import Access
from crm_platform.engine.errors import NotFound
from crm_platform.metadata.model import ACTIONS

from .context import actor, installation
from .describe import describe_entity

bp = Blueprint("api_meta", __name__, url_prefix="/api/meta")


def _access() -> Access:
    inst = installation()
    return Access(inst.runtime, inst.db, actor())


@bp.get("/entities")
def list_entities():
    """The entities the caller may read (or create, or see a pool of)."""
    access, runtime = _access(), installation().runtime
    data = [{"name": er.name, "label": dict(er.entity.label)} for er in runtime.entities.values()
            if access.sees_entity(er)]
    return jsonify({"data": data, "version": runtime.version})


@bp.get("/entities/<entity>")
def get_entity(entity: str):
    """The entity as this caller may see it: hidden fields absent, read-only fields marked."""
    access = _access()
    er = installation().runtime.entity(entity)
    if not access.sees_entity(er):
        raise NotFound("unknown_entity", entity=entity)
    policy = access.policy(er)
    actions = {a: policy.scope(a) for a in ACTIONS}
    return jsonify(describe_entity(er.entity, policy.hidden, policy.readonly, actions))

