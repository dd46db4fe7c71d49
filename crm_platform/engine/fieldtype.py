"""The contract every field type implements, and the error its checks raise.

The types themselves live beside it (``fieldtypes.py``, ``numbers.py``) and are registered in one
literal dict, :data:`crm_platform.engine.fieldtypes.TYPES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from crm_platform.metadata.model import FieldDef

Check = Callable[[Any], Any]


class Invalid(Exception):
    """A value failed a check; carries a message key and its parameters."""

    def __init__(self, key: str, **params):
        self.key, self.params = key, params


class FieldType:
    """Base: one nullable column named after the field, JSON values stored as they are."""

    stored = True
    sortable = True
    expected = "value"

    def column_type(self, f: FieldDef) -> sa.types.TypeEngine:
        raise NotImplementedError

    def columns(self, f: FieldDef) -> list[sa.Column]:
        return [sa.Column(f.name, self.column_type(f), nullable=True, info={"field": f})]

    def check(self, f: FieldDef) -> Check:
        """A function that returns the Python value for a JSON input or raises Invalid."""
        raise NotImplementedError

    def from_row(self, f: FieldDef, row) -> Any:
        return row[f.name]

    def to_row(self, f: FieldDef, value) -> dict[str, Any]:
        return {f.name: value}

    def to_json(self, value):
        return value

    def parse_query(self, f: FieldDef, text: str):
        return self.check(f)(text)

    def convert(self, f: FieldDef, value):
        """The value of this type that ``value``, stored under the column's previous type, becomes
        when the field's type changes (a migration's ``change_type``); raises Invalid if it has none."""
        return self.parse_query(f, value if type(value) is str else str(value))
