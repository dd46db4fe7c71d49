"""Answering "may this user do this, and why?" with the same checks the enforcement uses."""

from __future__ import annotations

from typing import Any

from .access import Access
from .runtime import EntityRuntime


def explain(access: Access, er: EntityRuntime, action: str, record: dict[str, Any] | None,
            field: str | None) -> dict[str, Any]:
    allowed, reasons = access.check(er, action, record)
    if field is not None:
        level = access.field_access(er, field)
        role = access.policy(er).role
        if level == "hidden":
            allowed = False
            reasons.append(f"field '{field}' is hidden from role '{role}'")
        elif action in ("create", "update") and level == "read":
            allowed = False
            reasons.append(f"field '{field}' is read-only for role '{role}'")
        else:
            reasons.append(f"field '{field}' is {'writable' if level == 'write' else 'readable'} for role '{role}'")
    return {"allowed": allowed, "reasons": reasons}
