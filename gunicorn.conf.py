"""gunicorn settings for the CRM: ``gunicorn -c gunicorn.conf.py 'crm_platform.web:create_app()'``.

gunicorn reads ``./gunicorn.conf.py`` by default, so from the repository root ``-c`` may be left out.
Everything here can be overridden on the command line or with ``GUNICORN_CMD_ARGS``.
"""

import os

from crm_platform.logs import gunicorn_logconfig

bind = os.environ.get("CRM_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Requests are short; a worker stuck longer than this is restarted (and logged).
timeout = 60
graceful_timeout = 30
# Fewer long-lived workers leaking memory: recycle each after this many requests (with jitter).
max_requests = 2000
max_requests_jitter = 200
# Build the app (load the definitions, compile the runtime, check the schema) once, before forking:
# a broken definition or a database that is behind stops the master at once with the reason.
preload_app = True
# One logfmt line per event, the same format as `crm` (crm_platform/logs.py). gunicorn's access log is
# off: the app logs each request itself, with its request id and user.
logconfig_dict = gunicorn_logconfig()


def post_fork(server, worker):
    """Connections must not be shared across processes: each worker opens its own pool."""
    app = getattr(server.app, "callable", None)
    installation = getattr(app, "extensions", {}).get("crm") if app is not None else None
    if installation is not None:
        installation.db.dispose(close=False)
