"""JSON in and out of the web layer.

- Amounts are exact: request numbers with a fraction or an exponent parse as ``decimal.Decimal``
  (integers stay ``int``), and a ``Decimal`` is written back as a JSON number with its exact digits
  (simplejson's ``use_decimal``), so ``12345678901234.56`` never passes through a binary float.
- Hostile bodies are refused at parse time, with a 400 that says why, before anything walks them:
  nesting deeper than :data:`MAX_DEPTH`, and strings holding a lone UTF-16 surrogate (``"\\ud800"``),
  which no database can store and no UTF-8 response can carry.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import simplejson
from flask.json.provider import JSONProvider

from crm_platform.engine.messages import Message

#: The deepest JSON a request may carry. Records are flat (a geo value or a list of choices is 2 deep).
MAX_DEPTH = 32
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class MalformedJSON(ValueError):
    """The body is not JSON this server accepts; ``message`` says why, in the client's language."""

    def __init__(self, key: str, **params):
        self.message = Message(key, params)
        super().__init__(self.message.render())


def parse(data: bytes | str):
    """The JSON value of ``data``, or :class:`MalformedJSON`."""
    try:
        value = simplejson.loads(data, use_decimal=True, parse_int=_integer)
    except RecursionError:
        raise MalformedJSON("json_depth", max=MAX_DEPTH) from None
    except simplejson.JSONDecodeError as exc:
        raise MalformedJSON("json_invalid", line=exc.lineno, column=exc.colno) from None
    except ValueError:  # UnicodeDecodeError
        raise MalformedJSON("json_encoding") from None
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    # Cheap tests on the raw bytes first: only a body that could break a rule is walked.
    surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    if surrogates or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _walk(value, surrogates)
    return value


def _integer(text: str) -> int | Decimal:
    """Integers as ``int``; one too long for Python's int parsing (4300 digits) stays a valid JSON
    number — a Decimal — that the field it was sent for refuses (422), not a malformed body (400)."""
    return int(text) if len(text) <= 4000 else Decimal(text)


def _walk(value, surrogates: bool) -> None:
    stack = [(value, 0, "")]
    while stack:
        item, depth, pointer = stack.pop()
        if isinstance(item, dict):
            children = [(v, f"{pointer}/{_escape(k)}", k) for k, v in item.items()]
        elif isinstance(item, list):
            children = [(v, f"{pointer}/{i}", None) for i, v in enumerate(item)]
        else:
            if surrogates and isinstance(item, str):
                _check_text(item, pointer or "/")
            continue
        if depth >= MAX_DEPTH:
            raise MalformedJSON("json_depth", max=MAX_DEPTH)
        for child, path, key in children:
            if surrogates and key is not None:
                _check_text(key, path)
            stack.append((child, depth + 1, path))


def _check_text(text: str, pointer: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJSON("json_surrogate", pointer=pointer) from None


def _escape(key: str) -> str:
    """A JSON-pointer token for ``key``, printable even when the key itself is the problem."""
    return key.encode("utf-8", "backslashreplace").decode().replace("~", "~0").replace("/", "~1")


def _default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "keys"):  # mapping proxies from frozen metadata
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_DUMPS = {"use_decimal": True, "ensure_ascii": False, "separators": (",", ":"), "default": _default}


class CrmJSONProvider(JSONProvider):
    """Flask's JSON provider for the app: exact decimals, UTF-8 text, keys in insertion order."""

    def dumps(self, obj, **kwargs) -> str:
        return simplejson.dumps(obj, **{**_DUMPS, **kwargs})

    def loads(self, s: str | bytes, **kwargs):
        return parse(s)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self.dumps(obj), mimetype="application/json")

