"""The Flask app factory. State lives on the app (``app.extensions["crm"]``), never in globals."""

from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from crm_platform.installation import Installation, Settings

from . import (api_auth, api_files, api_meta, api_permissions, api_records, context, errors, openapi, pages, payload,
               requestlog, session_auth, throttle)
from .jsonio import CrmJSONProvider


log = logging.getLogger(__name__)


def ui_folder() -> Path:
    from importlib import resources
    packaged = resources.files("crm_platform").joinpath("_data/ui")
    return Path(str(packaged)) if packaged.is_dir() else Path(__file__).resolve().parents[2] / "ui"


def create_app(settings: Settings | None = None, installation: Installation | None = None,
               check_schema: bool = True) -> Flask:
    """Build the web app for one installation.

    Fails loudly (DefinitionError, SchemaBehind) rather than starting half-working: a bad
    definition or a database that lacks the definitions' tables stops start-up with every problem.
    """
    installation = installation or Installation.open(settings or Settings.from_env())
    if check_schema:
        installation.check_initialised()
        installation.check_schema()
    ui = ui_folder()
    app = Flask(__name__, template_folder=str(ui / "templates"), static_folder=str(ui / "static"))
    if not installation.settings.secret_key:
        log.warning("no CRM_SECRET_KEY and no instance/secret_key (run `crm init`): using a random key; "
                    "sessions end when this process restarts and are not shared between processes")
    app.config.update(SECRET_KEY=installation.settings.secret_key or secrets.token_hex(32),
                      MAX_CONTENT_LENGTH=16 * 1024 * 1024, SESSION_COOKIE_SECURE=installation.settings.secure_cookies)
    app.json = CrmJSONProvider(app)
    settings = installation.settings
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
    app.extensions["crm"] = installation
    requestlog.init_app(app)
    errors.register(app)
    payload.init_app(app)
    context.init_app(app)
    # One installation, one count: keys are prefixed by its database, not by the process.
    database_key = hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]
    throttle.init_app(app, settings.redis_url, scope=database_key)
    api = (api_auth.bp, api_files.bp, api_meta.bp, api_permissions.bp, api_records.bp, openapi.bp)
    for blueprint in api + (pages.bp,):
        app.register_blueprint(blueprint)
    session_auth.init_app(app, api)
    return app
