"""The small protocol the record service calls at each write; ``workflow/`` implements it.

The engine never imports the workflow package: whoever builds the runtime (the app factory, a
worker's start-up, the CLI) passes an implementation to the :class:`RecordService`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa


@dataclass(frozen=True, slots=True)
class RecordEvent:
    entity: str
    action: str  # create | update | delete
    record_id: str
    version: int
    record: Mapping[str, Any]
    old: Mapping[str, Any] | None
    changed: frozenset[str]
    actor_id: str | None


class RecordHooks(Protocol):
    def before_write(self, event: RecordEvent, connection: sa.Connection) -> Mapping[str, Any] | None:
        """Runs inside the transaction, before the row is written; may return field values to set
        (sync rules) or raise a RecordError to block the write."""

    def after_commit(self, events: list[RecordEvent]) -> None:
        """Runs after the transaction committed (dispatch of async actions)."""


class NoHooks:
    def before_write(self, event, connection):
        return None

    def after_commit(self, events):
        return None


NO_HOOKS = NoHooks()
