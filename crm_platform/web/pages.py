"""Server-rendered pages. For now: a front page that says what is running and where the API is."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from .context import access, installation

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    inst = installation()
    entities = []
    if current_user.is_authenticated:
        caller = access(current_user.actor)
        entities = [er.entity for er in inst.runtime.entities.values() if caller.sees_entity(er)]
    return render_template("index.html", catalog=inst.runtime.catalog, entities=entities)
