"""The system columns every record carries, as fields: their contract type and their label."""

from __future__ import annotations

from types import MappingProxyType

#: name → (contract type name, label per locale)
SYSTEM_FIELDS = MappingProxyType({
    "id": ("text", {"en": "ID", "zh": "ID"}),
    "version": ("integer", {"en": "Version", "zh": "版本"}),
    "owner": ("user", {"en": "Owner", "zh": "负责人"}),
    "team": ("text", {"en": "Team", "zh": "团队"}),
    "stage": ("select", {"en": "Stage", "zh": "阶段"}),
    "created_at": ("datetime", {"en": "Created at", "zh": "创建时间"}),
    "created_by": ("user", {"en": "Created by", "zh": "创建人"}),
    "updated_at": ("datetime", {"en": "Updated at", "zh": "更新时间"}),
    "updated_by": ("user", {"en": "Updated by", "zh": "更新人"}),
})
#: System columns a client may write (the rest are set by the engine).
WRITABLE_SYSTEM_FIELDS = frozenset({"owner", "stage"})


def label_of(entity, name: str):
    """The label (a locale map) of a field or system column of ``entity``; the name if it has none."""
    if entity.has_field(name):
        return entity.field(name).label
    return SYSTEM_FIELDS[name][1] if name in SYSTEM_FIELDS else name
