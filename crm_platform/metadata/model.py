"""The catalog's typed, frozen model: what the definitions say, and nothing about tables or HTML.

Everything here is immutable. A change to the definitions produces a new :class:`Catalog` with a
new ``version``; the engine compiles each version once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .expressions import Expression

I18n = Mapping[str, str]

#: Columns every entity table has, in the order the API shows them.
SYSTEM_FIELDS = ("id", "version", "owner", "team", "stage", "created_at", "created_by", "updated_at", "updated_by")
#: Names no definition may use for a field.
RESERVED_NAMES = frozenset(SYSTEM_FIELDS) | {"old", "user"}

ACTIONS = ("create", "read", "update", "delete", "assign", "convert", "import", "export")
#: Operations that may move a record into a stage declared ``set_by`` them (a plain write may not).
STAGE_ACTIONS = ("convert",)
#: The locale every user-facing text of a definition must have: what is shown when the caller's is missing.
FALLBACK_LOCALE = "en"
SCOPES = ("none", "own", "team", "subtree", "all")


def frozen_map(items: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: I18n
    color: str | None = None
    when: tuple[str, ...] = ()


#: Summary functions of a rollup field.
ROLLUP_FUNCTIONS = ("sum", "count", "min", "max", "avg")
#: What deleting a referenced record does to the records that reference it.
ON_DELETE = ("restrict", "cascade", "set_null")


@dataclass(frozen=True, slots=True)
class Rollup:
    """A stored summary (``function`` of ``entity.field``) over the records of ``entity`` whose
    reference ``via`` points at the record holding it, counting only those matching ``where``."""
    entity: str
    via: str
    function: str
    field: str | None = None
    where: Expression | None = None


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str
    label: I18n
    help: I18n | None = None
    required: bool = False
    default: Any = None
    default_expr: Expression | None = None
    unique: bool = False
    indexed: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[Choice, ...] = ()
    depends_on: str | None = None
    precision: int | None = None
    currency: str | None = None
    target: str | None = None
    expression: Expression | None = None
    result_type: str | None = None
    format: str | None = None
    digits: int | None = None
    renamed_from: str | None = None
    readonly: bool = False
    required_if: Expression | None = None
    readonly_if: Expression | None = None
    visible_if: Expression | None = None
    #: A path ("account.industry") this field's value is read from, across references; never stored.
    lookup: str | None = None
    #: A path whose value is copied into this field when its first reference is set or changed.
    fetch_from: str | None = None
    rollup: Rollup | None = None
    #: For references: this entity is a detail of the target (master-detail).
    detail: bool = False
    on_delete: str = "restrict"
    #: (file, JSON pointer) of the document that last defined the field, for problems found later.
    origin: tuple[str, str] = field(default=("", ""), compare=False)

    @property
    def computed(self) -> bool:
        """True for fields the engine fills itself (formula, autonumber, lookup, rollup)."""
        return self.type in ("formula", "autonumber") or self.lookup is not None or self.rollup is not None

    @property
    def stored(self) -> bool:
        """Whether the field has a column (lookups are read across references instead)."""
        return self.lookup is None and self.type != "formula"

    def choice_values(self) -> frozenset[str]:
        return frozenset(c.value for c in self.choices)


@dataclass(frozen=True, slots=True)
class Gate:
    required: tuple[str, ...] = ()
    condition: Expression | None = None
    message: I18n | None = None


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    label: I18n
    probability: float = 0
    category: str = "open"
    color: str | None = None
    transitions: tuple[str, ...] | None = None
    gate: Gate | None = None
    #: A new record may be created directly in this stage (besides the entity's initial stage).
    entry: bool = False
    #: Only these operations (names from STAGE_ACTIONS) may move a record into this stage.
    set_by: tuple[str, ...] = ()
    #: Only users with one of these roles may move a record into this stage (empty: anyone).
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DuplicateRule:
    name: str
    fields: tuple[str, ...]
    action: str = "block"
    message: I18n | None = None


@dataclass(frozen=True, slots=True)
class ValidationRule:
    """A condition every saved record satisfies; when it is false, ``message`` goes on ``fields``."""
    name: str
    condition: Expression
    message: I18n
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Section:
    label: I18n | None
    columns: tuple[tuple[str, ...], ...]
    name: str | None = None
    visible_if: Expression | None = None
    help: I18n | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for column in self.columns for name in column)


@dataclass(frozen=True, slots=True)
class Tab:
    label: I18n | None
    sections: tuple[Section, ...]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class RelatedList:
    entity: str
    field: str
    label: I18n | None = None
    columns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Form:
    name: str
    tabs: tuple[Tab, ...]
    label: I18n | None = None
    roles: tuple[str, ...] | None = None
    related: tuple[RelatedList, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(n for tab in self.tabs for section in tab.sections for n in section.fields)


@dataclass(frozen=True, slots=True)
class ListView:
    name: str
    columns: tuple[str, ...]
    label: I18n | None = None
    filters: Mapping[str, Any] = field(default_factory=frozen_map)
    sort: tuple[str, ...] = ()
    group_by: str | None = None


@dataclass(frozen=True, slots=True)
class Kanban:
    field: str
    card_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EntityDef:
    name: str
    label: I18n
    fields: tuple[FieldDef, ...]
    plural_label: I18n | None = None
    description: I18n | None = None
    icon: str | None = None
    owned: bool = False
    pooled: bool = False
    title: str | None = None
    search_fields: tuple[str, ...] = ()
    default_sort: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()
    initial_stage: str | None = None
    duplicate_rules: tuple[DuplicateRule, ...] = ()
    validation_rules: tuple[ValidationRule, ...] = ()
    #: A number field that follows the probability of the stage the record enters.
    probability_field: str | None = None
    forms: Mapping[str, Form] = field(default_factory=frozen_map)
    list_views: Mapping[str, ListView] = field(default_factory=frozen_map)
    kanban: Kanban | None = None
    #: A detail of an owned entity: its rows carry the parent's owner and team (copied by the engine).
    follows_owner: bool = False
    source: str = ""
    _by_name: Mapping[str, FieldDef] = field(default_factory=frozen_map, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", frozen_map({f.name: f for f in self.fields}))

    @property
    def staged(self) -> bool:
        return bool(self.stages)

    def field(self, name: str) -> FieldDef:
        return self._by_name[name]

    def has_field(self, name: str) -> bool:
        return name in self._by_name

    @property
    def parent(self) -> FieldDef | None:
        """The reference to this entity's master, if it is a detail (master-detail)."""
        return next((f for f in self.fields if f.detail), None)

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def first_stage(self) -> str | None:
        return self.initial_stage or (self.stages[0].name if self.stages else None)

    @property
    def entry_stages(self) -> tuple[str, ...]:
        """The stages a new record may start in: the initial stage, then those marked ``entry``."""
        first = self.first_stage
        return tuple(s.name for s in self.stages if s.name == first or s.entry)

    @property
    def has_owner(self) -> bool:
        """Whether records carry owner and team: their own, or (a detail) their parent's."""
        return self.owned or self.follows_owner

    def system_fields(self) -> tuple[str, ...]:
        """The system columns this entity has (owner/team if owned or following an owned parent,
        stage only if staged)."""
        skip = set()
        if not self.has_owner:
            skip |= {"owner", "team"}
        if not self.staged:
            skip.add("stage")
        return tuple(n for n in SYSTEM_FIELDS if n not in skip)


@dataclass(frozen=True, slots=True)
class EntityGrant:
    actions: Mapping[str, str] = field(default_factory=frozen_map)
    pool: bool = False
    fields: Mapping[str, str] = field(default_factory=frozen_map)
    readonly_if: Expression | None = None


@dataclass(frozen=True, slots=True)
class SharingRule:
    entity: str
    condition: Expression
    level: str
    name: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class RoleDef:
    name: str
    label: I18n
    level: int = 0
    description: I18n | None = None
    entities: Mapping[str, EntityGrant] = field(default_factory=frozen_map)
    sharing: tuple[SharingRule, ...] = ()
    source: str = ""

    def grant(self, entity: str) -> EntityGrant | None:
        return self.entities.get(entity) or self.entities.get("*")


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    version: str
    label: I18n
    path: str
    extends: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    description: I18n | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every loaded definition, resolved and checked; ``version`` is a hash of its content."""

    version: str
    packs: tuple[PackInfo, ...]
    entities: Mapping[str, EntityDef]
    roles: Mapping[str, RoleDef]

    def entity(self, name: str) -> EntityDef:
        return self.entities[name]
