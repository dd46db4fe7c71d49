"""Per-entity record validation, compiled once per catalog version.

Two phases, every error collected: :meth:`RecordValidator.parse` checks each value sent (type,
length, pattern, range, choices, unknown and read-only fields); :meth:`RecordValidator.check`
checks the record as a whole once merged with what is stored (required, required_if, readonly_if,
dependent choices, stage entry, action-only stages, transitions and gates).

Messages name fields, stages and entities by their labels (locale maps), rendered in the caller's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_platform.metadata.errors import ExpressionLimitError
from crm_platform.metadata.model import EntityDef, FieldDef, RoleDef

from .fieldtypes import TYPES, Invalid
from .messages import Message
from .system_fields import SYSTEM_FIELDS

Errors = dict[str, list[Message]]
#: The action of loading records as they are (imports, the trusted system context): a new record may
#: start in any stage except those only an action may set; transitions do not apply to a create, gates do.
IMPORT = "import"
#: The owner system column, checked like a user field.
OWNER = FieldDef("owner", "user", SYSTEM_FIELDS["owner"][1])


def _add(errors: Errors, name: str, key: str, **params) -> None:
    errors.setdefault(name, []).append(Message(key, params))


def _blank(value) -> bool:
    return value is None or value == [] or value == ""


class RecordValidator:
    def __init__(self, entity: EntityDef, roles: Mapping[str, RoleDef] | None = None):
        self.entity = entity
        #: stage → the labels of the roles that may move a record into it (role-restricted stages only)
        self.stage_roles = {s.name: tuple(roles[r].label if roles and r in roles else {"en": r} for r in s.roles)
                            for s in entity.stages if s.roles}
        self.checks = {f.name: TYPES[f.type].check(f) for f in entity.fields if not f.readonly}
        stages = {s.name for s in entity.stages}
        if entity.staged:
            def check_stage(value):
                if value is None or value == "":
                    raise Invalid("required")
                if type(value) is not str or value not in stages:
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
        self.entry = frozenset(entity.entry_stages)
        self.entry_labels = tuple(s.label for s in entity.stages if s.name in self.entry)

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
              user: Mapping[str, Any] | None, errors: Errors, *, action: str | None = None) -> None:
        """Whole-record rules on ``record`` (stored values merged with ``changed``). ``action`` names the
        operation making the write (e.g. "convert") when it is not a plain create or update: only it may
        move the record into a stage declared ``set_by`` it."""
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
                _add(errors, name, "dependent_choice", value=value, parent=self.entity.field(parent).label,
                     parent_value=record.get(parent))
        if self.entity.owned and not self.entity.pooled and record.get("owner") is None \
                and (creating or "owner" in changed) and "owner" not in errors:
            _add(errors, "owner", "required")  # only pooled records may sit in the public pool
        if self.entity.staged and (creating or "stage" in changed) and "stage" not in errors:
            self._check_stage(record, old, user, errors, action)
        for rule in self.entity.validation_rules:
            try:
                result = rule.condition.evaluate(record, old, user)
            except ExpressionLimitError as exc:
                _add(errors, rule.fields[0], "expression_limit", detail=str(exc))
                continue
            if result is not None and not result:  # blank (undecidable) passes, like a SQL CHECK
                for name in rule.fields:
                    _add(errors, name, "custom", text=dict(rule.message))

    def _check_stage(self, record, old, user, errors: Errors, action: str | None) -> None:
        entity, new = self.entity, record.get("stage")
        stage = entity.stage(new)
        previous = old.get("stage") if old is not None else None
        if stage is None or (old is not None and previous == new):
            return
        if stage.set_by and action not in stage.set_by:
            _add(errors, "stage", "stage_action_only", stage=stage.label, action=stage.set_by)
            return
        if old is None and new not in self.entry and not stage.set_by and action != IMPORT:
            _add(errors, "stage", "stage_entry", entity=entity.label, stage=stage.label, allowed=self.entry_labels)
            return
        if stage.roles and user is not None and user.get("role") not in stage.roles:
            _add(errors, "stage", "stage_role", stage=stage.label, roles=self.stage_roles[stage.name])
            return
        before = entity.stage(previous) if previous is not None else None
        if before is not None and before.transitions is not None and new not in before.transitions:
            _add(errors, "stage", "transition", old=before.label, new=stage.label)
            return
        gate = stage.gate
        if gate is None:
            return
        for name in gate.required:
            if _blank(record.get(name)) and name not in errors:
                _add(errors, name, "gate_required", stage=stage.label)
        if gate.condition is not None and not _truthy(gate.condition, record, old, user, errors, "stage"):
            if gate.message:
                _add(errors, "stage", "custom", text=dict(gate.message))
            else:
                _add(errors, "stage", "gate_condition", stage=stage.label)


def _truthy(expression, record, old, user, errors: Errors, name: str) -> bool:
    try:
        return bool(expression.evaluate(record, old, user))
    except ExpressionLimitError as exc:
        _add(errors, name, "expression_limit", detail=str(exc))
        return False
