"""Errors about a request (as opposed to a definition): each has a stable code and a message key.

The engine raises these; only ``web/`` (and the CLI) turn them into responses or output.
"""

from __future__ import annotations

from crm_platform.metadata.errors import CrmError

from .messages import Message


class RecordError(CrmError):
    """Root of errors caused by a request."""

    code = "bad_request"

    def __init__(self, key: str, **params):
        self.message = Message(key, params)
        super().__init__(self.message.render())


class BadRequest(RecordError):
    code = "malformed"


class Unauthenticated(RecordError):
    code = "unauthorized"


class Forbidden(RecordError):
    code = "forbidden"


class FieldsForbidden(Forbidden):
    """The request writes fields the caller may not write; ``fields`` maps each to its message."""

    def __init__(self, fields: dict[str, list[Message]], labels: dict[str, object] | None = None):
        """``labels``: field name → its label (a locale map), so the message names fields as users know them."""
        self.fields = fields
        labels = labels or {}
        super().__init__("forbidden_fields", fields=tuple(labels.get(name, name) for name in sorted(fields)))


class TooManyAttempts(RecordError):
    code = "rate_limited"


class NotFound(RecordError):
    code = "not_found"


class Conflict(RecordError):
    code = "conflict"


class StaleVersion(Conflict):
    code = "stale_version"


class Duplicate(Conflict):
    code = "duplicate"

    def __init__(self, key: str, existing_id: str | None = None, **params):
        self.existing_id = existing_id
        super().__init__(key, **params)


class RecordInvalid(RecordError):
    """One or more fields are invalid; ``fields`` maps each field name to all its messages."""

    code = "validation"

    def __init__(self, fields: dict[str, list[Message]]):
        self.fields = fields
        super().__init__("invalid_record")
        self.args = (f"invalid fields: {', '.join(sorted(fields))}",)
