"""Metadata for clients: which entities exist and how each looks to the caller."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .context import actor, installation
from .describe import describe_entity

bp = Blueprint("api_meta", __name__, url_prefix="/api/meta")


@bp.get("/entities")
def list_entities():
    actor()
    catalog = installation().runtime.catalog
    return jsonify({"data": [{"name": e.name, "label": dict(e.label)} for e in catalog.entities.values()],
                    "version": catalog.version})


@bp.get("/entities/<entity>")
def get_entity(entity: str):
    actor()
    described = describe_entity(installation().runtime.entity(entity).entity)
    return jsonify(described)
