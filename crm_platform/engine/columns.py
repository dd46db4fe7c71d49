"""Column types the engine needs beyond SQLAlchemy's own."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite stores naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type:
        return datetime

    def process_bind_param(self, value, dialect):
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
