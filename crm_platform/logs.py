"""Process-wide logging: one line per event, ``key=value`` pairs (logfmt), on stderr.

``configure_logging()`` is called once by every process that runs the platform: `crm serve` and every
other `crm` command, and gunicorn (``gunicorn.conf.py`` routes gunicorn's own loggers here too). The
library code only logs (``logging.getLogger(__name__)``); it never configures handlers itself.

Structured fields travel in ``extra={"fields": {...}}`` so any formatter (this one, or a JSON one an
operator prefers) sees them as data::

    ts=2026-12-02T06:01:02.345Z level=INFO logger=crm_platform.web.requestlog msg=request
    request_id=3f2a... method=GET path=/api/me status=200 duration_ms=4.1 user=0193...

Values with spaces, quotes, ``=`` or control characters are JSON-quoted, so a value can never start a
new line or forge a field (a traceback is one quoted ``exc="..."`` value with ``\\n`` escapes).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

LEVEL_VARIABLE = "CRM_LOG_LEVEL"
DEFAULT_LEVEL = "INFO"

_BARE = re.compile(r"[^\s\"'=\\\x00-\x1f\x7f]+")


def level_from_env() -> int:
    """The level named by ``CRM_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR; default INFO)."""
    name = os.environ.get(LEVEL_VARIABLE, DEFAULT_LEVEL).strip().upper() or DEFAULT_LEVEL
    level = logging.getLevelNamesMapping().get(name)
    return level if isinstance(level, int) else logging.INFO


def debug_enabled() -> bool:
    """True when ``CRM_LOG_LEVEL=DEBUG``: the CLI then shows tracebacks instead of one-line errors."""
    return level_from_env() <= logging.DEBUG


def _value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool | int | float):
        return str(value)
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """``ts= level= logger= msg=`` then the record's ``fields``, then ``exc=`` if there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        pairs = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
                 "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            pairs.update({key: val for key, val in fields.items() if key not in pairs})
        if record.exc_info:
            pairs["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            pairs["stack"] = self.formatStack(record.stack_info)
        return " ".join(f"{key}={_value(val)}" for key, val in pairs.items())


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the call (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(LogfmtFormatter())

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


#: loggers whose INFO lines are noise for operators: werkzeug logs every request of the development
#: server (our request line says more), alembic announces its plugins on import
_QUIET = ("werkzeug", "alembic")


def configure_logging(level: int | str | None = None) -> int:
    """Configure the root logger for this process: one logfmt line per event on stderr.

    The level comes from ``level`` or else ``CRM_LOG_LEVEL`` (default INFO). Idempotent: calling it
    again replaces the handler it installed and leaves any other handler (a test runner's) alone.
    Returns the level in force.
    """
    if isinstance(level, str):
        level = logging.getLevelNamesMapping().get(level.strip().upper(), logging.INFO)
    resolved = level if isinstance(level, int) else level_from_env()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, StderrHandler):
            root.removeHandler(handler)
    root.addHandler(StderrHandler())
    root.setLevel(resolved)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG if resolved <= logging.DEBUG else logging.WARNING)
    return resolved


def gunicorn_logconfig() -> dict:
    """A ``logconfig_dict`` for gunicorn: ``gunicorn.error`` loses its own handler and propagates to the
    root logger, which gets the same handler as the CLI. The access log is silenced: the app's request
    line (``web/requestlog.py``) carries the same facts plus the request id and the user."""
    level = logging.getLevelName(level_from_env())
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {},
        "handlers": {"crm": {"()": StderrHandler}},
        "root": {"level": level, "handlers": ["crm"]},
        "loggers": {"gunicorn.error": {"level": level, "handlers": [], "propagate": True},
                    "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
                    **{name: {"level": "DEBUG" if level == "DEBUG" else "WARNING"} for name in _QUIET}},
    }
