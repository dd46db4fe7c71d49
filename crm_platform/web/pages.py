"""Server-rendered pages. For now: a front page that says what is running and where the API is."""

from __future__ import annotations

from flask import Blueprint, render_template

from .context import installation

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    runtime = installation().runtime
    return render_template("index.html", catalog=runtime.catalog)
