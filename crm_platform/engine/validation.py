"""Per-entity record validation, compiled once per catalog version.

Two phases, every error collected: :meth:`RecordValidator.parse` checks each value sent (type,
length, pattern, range, choices, unknown and read-only fields); :meth:`RecordValidator.check`
checks the record as a whole once merged with what is stored (required, required_if, readonly_if,
dependent choices, stage transitions and gates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_platform.metadata.errors import ExpressionLimitError
from crm_platform.metadata.model import EntityDef, FieldDef

from .fieldtypes import TYPES, Invalid
from .messages import Message

Errors = dict[str, list[Message]]
#: The owner system column, checked like a user field.
OWNER = FieldDef("owner", "user", {"en": "Owner", "zh": "负责人"})


def _add(errors: Errors, name: str, key: str, **params) -> None:
    errors.setdefault(name, []).append(Message(key, params))


def _blank(value) -> bool:
    return value is None or value == [] or value == ""


class RecordValidator:
    def __init__(self, entity: EntityDef):
        self.entity = entity
        self.checks = {f.name: TYPES[f.type].check(f) for f in entity.fields if not f.readonly}
        stages = {s.name for s in entity.stages}
        if entity.staged:
            def check_stage(value):
                if value is None or value == "":
                    raise Invalid("required")
                if value not in stages:
                    raise Invalid("stage", value=value)
                return value
            self.checks["stage"] = check_stage
        if entity.owned:
            self.checks["owner"] = TYPES["user"].check(OWNER)
        self.readonly = {f.name for f in entity.fields if f.readonly} | set(entity.system_fields()) - set(self.checks)
        self.required = tuple(f.name for f in entity.fields if f.required and not f.readonly)
        self.required_if = tuple((f.name, f.required_if) for f in entity.fields if f.required_if is not None)
        self.readonly_if = tuple((f.name, f.readonly_if) for f in entity.fields if f.readonly_if is not None)
        self.dependent = tuple((f.name, f.depends_on, {c.value: frozenset(c.when) for c in f.choices if c.when})
                               for f in entity.fields if f.depends_on)

    def parse(self, data: Mapping[str, Any], errors: Errors) -> dict[str, Any]:
        """Python values for the JSON values sent; failures go into ``errors``."""
        checks, values = self.checks, {}
        for name, value in data.items():
            check = checks.get(name)
            if check is None:
                _add(errors, name, "readonly" if name in self.readonly else "unknown_field")
                continue
            try:
                values[name] = check(value)
            except Invalid as exc:
                errors.setdefault(name, []).append(Message(exc.key, exc.params))
        return values

    def check(self, record: Mapping[str, Any], changed: Mapping[str, Any], old: Mapping[str, Any] | None,
              user: Mapping[str, Any] | None, errors: Errors) -> None:
        """Whole-record rules on ``record`` (stored values merged with ``changed``)."""
        creating = old is None
        for name in self.required:
            if (creating or name in changed) and _blank(record.get(name)) and name not in errors:
                _add(errors, name, "required")
        for name, condition in self.required_if:
            if _blank(record.get(name)) and name not in errors and _truthy(condition, record, old, user, errors, name):
                _add(errors, name, "required")
        if old is not None:
            for name, condition in self.readonly_if:
                if name in changed and changed[name] != old.get(name) and _truthy(condition, old, None, user, errors, name):
                    _add(errors, name, "readonly")
        for name, parent, allowed in self.dependent:
            value = record.get(name)
            if value in allowed and (name in changed or parent in changed) and record.get(parent) not in allowed[value]:
                _add(errors, name, "dependent_choice", value=value, parent=parent, parent_value=record.get(parent))
        if self.entity.owned and not self.entity.pooled and record.get("owner") is None \
                and (creating or "owner" in changed) and "owner" not in errors:
            _add(errors, "owner", "required")  # only pooled records may sit in the public pool
        if self.entity.staged and (creating or "stage" in changed) and "stage" not in errors:
            self._check_stage(record, old, user, errors)

    def _check_stage(self, record, old, user, errors: Errors) -> None:
        entity, new = self.entity, record.get("stage")
        previous = old.get("stage") if old is not None else None
        if previous is not None and previous != new:
            allowed = entity.stage(previous).transitions if entity.stage(previous) else None
            if allowed is not None and new not in allowed:
                _add(errors, "stage", "transition", old=previous, new=new)
                return
        if previous == new:
            return
        gate = entity.stage(new).gate
        if gate is None:
            return
        for name in gate.required:
            if _blank(record.get(name)) and name not in errors:
                _add(errors, name, "gate_required", stage=new)
        if gate.condition is not None and not _truthy(gate.condition, record, old, user, errors, "stage"):
            if gate.message:
                _add(errors, "stage", "custom", text=dict(gate.message))
            else:
                _add(errors, "stage", "gate_condition", stage=new)


def _truthy(expression, record, old, user, errors: Errors, name: str) -> bool:
    try:
        return bool(expression.evaluate(record, old, user))
    except ExpressionLimitError as exc:
        _add(errors, name, "expression_limit", detail=str(exc))
        return False
