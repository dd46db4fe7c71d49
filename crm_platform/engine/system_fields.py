"""The system columns every record carries, as fields: what they are beyond their names.

Which system columns exist, and in what order, is written once: ``metadata.model.SYSTEM_FIELDS``.
Here each gets its contract type name and label (``GET /api/meta``), whether a client may write it,
the type that reads its list filters, and the JSON Schema of its value in a record.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

from crm_platform.metadata import model
from crm_platform.metadata.model import Choice, EntityDef, I18n

from .fieldtype import DATETIME, ID, STRING, TEXTUAL, FieldType, Invalid
from .fieldtypes import TYPES
from .numbers import Integer

#: The version column is a 32-bit INTEGER.
VERSION_MAX = 2 ** 31 - 1


class AsSent(FieldType):
    """Id-like system columns in a filter: the text compared as it is sent (``filter[owner]=``
    matches no owner, where a user field's check would read it as "unset" and match the pool)."""

    operators = TEXTUAL

    def parse_query(self, f, text):
        return text

    def query_schema(self, f):
        return dict(STRING)


class Version(Integer):
    """The version column in a filter: nothing outside its 32 bits can match, so it is refused."""

    def parse_query(self, f, text):
        value = super().parse_query(f, text)
        if not 0 <= value <= VERSION_MAX:
            raise Invalid("type", expected="integer")
        return value

    def query_schema(self, f):
        return {"type": "integer", "minimum": 0, "maximum": VERSION_MAX}


class SystemField(NamedTuple):
    type: str  # the contract type name it is described with
    label: I18n
    query: FieldType  # reads its list filters and answers its operators
    schema: dict  # JSON Schema of its value in a record (null added where its column allows it)
    writable: bool = False

    def choices(self, entity: EntityDef) -> tuple[Choice, ...]:
        """The values it may take in ``entity``, where they are a list."""
        return ()


class Stage(SystemField):
    __slots__ = ()

    def choices(self, entity):
        return tuple(Choice(s.name, s.label) for s in entity.stages)


_AS_SENT = AsSent()
_PROPERTIES = {
    "id": SystemField("text", {"en": "ID", "zh": "ID"}, _AS_SENT, {"type": "string"}),
    "version": SystemField("integer", {"en": "Version", "zh": "版本"}, Version(), {"type": "integer", "minimum": 1}),
    "owner": SystemField("user", {"en": "Owner", "zh": "负责人"}, _AS_SENT,
                         {**ID, "description": "id of the owning user; null: in the public pool"}, writable=True),
    "team": SystemField("text", {"en": "Team", "zh": "团队"}, _AS_SENT,
                        {"type": "string", "description": "the owner's team"}),
    "stage": Stage("select", {"en": "Stage", "zh": "阶段"}, _AS_SENT, {"type": "string"}, writable=True),
    "created_at": SystemField("datetime", {"en": "Created at", "zh": "创建时间"}, TYPES["datetime"], DATETIME),
    "created_by": SystemField("user", {"en": "Created by", "zh": "创建人"}, _AS_SENT, {"type": "string"}),
    "updated_at": SystemField("datetime", {"en": "Updated at", "zh": "更新时间"}, TYPES["datetime"], DATETIME),
    "updated_by": SystemField("user", {"en": "Updated by", "zh": "更新人"}, _AS_SENT, {"type": "string"}),
}
#: name → :class:`SystemField`, in the model's order
SYSTEM_FIELDS: MappingProxyType[str, SystemField] = MappingProxyType(
    {name: _PROPERTIES[name] for name in model.SYSTEM_FIELDS})
#: System columns holding datetimes (their JSON is the UTC ISO text).
DATETIME_SYSTEM_FIELDS = frozenset(name for name, s in SYSTEM_FIELDS.items() if s.type == "datetime")


def label_of(entity, name: str):
    """The label (a locale map) of a field or system column of ``entity``; the name if it has none."""
    if entity.has_field(name):
        return entity.field(name).label
    return SYSTEM_FIELDS[name].label if name in SYSTEM_FIELDS else name
