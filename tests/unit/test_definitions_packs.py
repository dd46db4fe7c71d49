"""Data-driven: every pack under definitions/ loads cleanly, and every entity in it stores an example record.

The example record is generated from the field definitions alone (one small value maker per field type),
so a new pack or a new field is covered without touching this file.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

try:  # Python 3.11+: the regex parser moved
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_parse

from crm_platform.engine import ListQuery, compile_runtime, make_engine
from crm_platform.engine.files import FileStore
from crm_platform.installation import Installation, Settings
from crm_platform.metadata import DefinitionError, load_catalog
from crm_platform.metadata.validate import validate_paths

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"
PACKS = sorted(path.parent for path in DEFINITIONS.glob("*/pack.json"))


def _load(folder: Path):
    try:
        return load_catalog([str(folder)])
    except DefinitionError:
        return None  # test_pack_loads_without_problems reports why


CATALOGS = {folder.name: _load(folder) for folder in PACKS}
CASES = [(pack, name) for pack, catalog in CATALOGS.items() if catalog for name in catalog.entities]


def case_id(case) -> str:
    pack, entity = case
    return entity if pack == "base" else f"{pack}:{entity}"


@cache
def runtime_for(pack: str):
    return compile_runtime(CATALOGS[pack])


# --- packs --------------------------------------------------------------------------------------------

def test_the_base_pack_is_among_the_packs():
    assert "base" in [folder.name for folder in PACKS]


@pytest.mark.parametrize("folder", PACKS, ids=[folder.name for folder in PACKS])
def test_pack_loads_without_problems(folder):
    problems, checked = validate_paths([folder])
    assert [str(p) for p in problems] == []
    assert checked == 1
    assert CATALOGS[folder.name] is not None


def _labels(catalog):
    for entity in catalog.entities.values():
        yield f"{entity.name}", entity.label
        for f in entity.fields:
            yield f"{entity.name}.{f.name}", f.label
            for choice in f.choices:
                yield f"{entity.name}.{f.name}={choice.value}", choice.label
        for stage in entity.stages:
            yield f"{entity.name}/stage {stage.name}", stage.label
    for role in catalog.roles.values():
        yield f"role {role.name}", role.label


@pytest.mark.parametrize("pack", [p for p, c in CATALOGS.items() if c])
def test_every_label_has_english_and_chinese(pack):
    missing = [where for where, label in _labels(CATALOGS[pack]) if not {"en", "zh"} <= set(label)]
    assert missing == []


# --- example values, one maker per field type ---------------------------------------------------------

def example_for_pattern(pattern: str, serial: int) -> str:
    """A string matching ``pattern``: minimal repeats, the serial-th character of every class."""
    def pick(options: str) -> str:
        return options[serial % len(options)]

    def chars(items) -> str:
        out = ""
        for op, arg in items:
            if op is sre_parse.LITERAL:
                out += chr(arg)
            elif op is sre_parse.RANGE:
                out += "".join(chr(c) for c in range(arg[0], arg[1] + 1))
            elif op is sre_parse.CATEGORY:
                out += {sre_parse.CATEGORY_DIGIT: "0123456789", sre_parse.CATEGORY_WORD: "abcdefghij",
                        sre_parse.CATEGORY_SPACE: " "}[arg]
            else:
                raise NotImplementedError(f"regex {pattern!r}: {op}")
        return out

    def emit(items) -> str:
        out = ""
        for op, arg in items:
            if op is sre_parse.LITERAL:
                out += chr(arg)
            elif op is sre_parse.IN:
                out += pick(chars(arg))
            elif op is sre_parse.ANY:
                out += "x"
            elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
                out += emit(arg[2]) * max(arg[0], 1)
            elif op is sre_parse.SUBPATTERN:
                out += emit(arg[-1])
            elif op is sre_parse.BRANCH:
                out += emit(arg[1][0])
            elif op is not sre_parse.AT:
                raise NotImplementedError(f"regex {pattern!r}: {op}")
        return out

    value = emit(sre_parse.parse(pattern))
    assert re.fullmatch(pattern, value), (pattern, value)
    return value


def _in_range(f, start, step):
    start = f.min if f.min is not None else start
    return start + step if f.max is None or start + step <= f.max else start


def _text(ex, f):
    value = example_for_pattern(f.pattern, ex.serial) if f.pattern else f"{ex.serial} {f.name}"
    value = value[:f.max_length or 255]
    return value, value


def _textarea(ex, f):
    value = f"{f.name} {ex.serial}\n  second line  "[:f.max_length or 65535]
    return value, value


def _integer(ex, f):
    value = int(_in_range(f, 0, 1))
    return value, value


def _number(ex, f):
    step = 0.25 if f.precision is None or f.precision >= 2 else 1
    value = _in_range(f, 1000, step)
    return value, float(value)


def _select(ex, f):
    parent = ex.sent.get(f.depends_on)
    value = next(c.value for c in f.choices if not c.when or parent in c.when)
    return value, value


def _reference(ex, f):
    target = ex.target(f.target)
    return target, target


def _file(ex, f):
    store = FileStore(ex.inst.db, ex.inst.runtime.tables["files"])
    stored = store.save("example.txt", "text/plain", b"hello", ex.actor)
    return stored.id, stored.id


VALUES = {
    "text": _text, "textarea": _textarea, "autonumber": _text,
    "email": lambda ex, f: (f"{f.name}.{ex.serial}@example.com",) * 2,
    "phone": lambda ex, f: (f"+86 138 0000 {ex.serial:04d}", f"+861380000{ex.serial:04d}"),
    "url": lambda ex, f: (f"https://example.com/{f.name}/{ex.serial}",) * 2,
    "integer": _integer, "decimal": _number, "currency": _number, "percent": _number,
    "boolean": lambda ex, f: (not f.default,) * 2,
    "date": lambda ex, f: ("2026-03-15",) * 2,
    "datetime": lambda ex, f: ("2026-03-15T09:30:00+08:00", "2026-03-15T01:30:00+00:00"),
    "select": _select,
    "multiselect": lambda ex, f: ([c.value for c in f.choices[:2]],) * 2,
    "reference": _reference, "user": lambda ex, f: (ex.actor.id,) * 2, "file": _file,
    "geo": lambda ex, f: ({"lat": 31.2304, "lon": 121.4737},) * 2,
}


class Examples:
    """Builds and creates example records, creating the records they refer to first (once per entity)."""

    def __init__(self, inst: Installation, actor):
        self.inst, self.actor, self.records = inst, actor, inst.records(actor)
        self.catalog = inst.runtime.catalog
        self.serial, self.ids, self.building, self.sent = 0, {}, [], {}

    def target(self, entity: str) -> str:
        if entity not in self.ids:
            self.ids[entity] = self.create(entity)[0]["id"]
        return self.ids[entity]

    def create(self, entity: str):
        sent, expected = self.build(entity)
        return self.records.create(entity, sent), sent, expected

    def build(self, entity: str):
        self.building.append(entity)
        self.serial += 1
        saved, self.sent = self.sent, {}
        expected = {}
        fields = sorted(self.catalog.entity(entity).fields, key=lambda f: f.depends_on is not None)
        for f in fields:
            if f.readonly:
                continue
            if f.type == "reference" and f.target in self.building and f.target not in self.ids:
                assert not f.required, f"{entity}.{f.name}: a required reference cycle cannot be built"
                continue
            self.sent[f.name], expected[f.name] = VALUES[f.type](self, f)
        sent, self.sent = self.sent, saved
        self.building.pop()
        return sent, expected


@pytest.fixture
def examples(tmp_path, request):
    pack = request.node.callspec.params["pack"]
    url = f"sqlite:///{tmp_path}/examples.db"
    inst = Installation(Settings(database_url=url), make_engine(url), runtime_for(pack))
    inst.migrate()
    role = "admin" if "admin" in inst.runtime.catalog.roles else sorted(inst.runtime.catalog.roles)[0]
    team_id = inst.accounts.create_team("Examples")
    actor = inst.accounts.actor(inst.accounts.create_user("example", "example-password", role, "Examples"))
    assert actor.team == team_id
    yield Examples(inst, actor)
    inst.db.dispose()


def test_pattern_examples_match_their_pattern():
    assert example_for_pattern(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$", 1) == "1" * 18
    assert example_for_pattern(r"(ab|cd)-[x-z]+\.?", 2) == "ab-z."


@pytest.mark.parametrize("pack, entity", CASES, ids=[case_id(c) for c in CASES])
def test_example_record_is_stored_and_read_back_as_sent(examples, pack, entity):
    definition = examples.catalog.entity(entity)
    for f in definition.fields:  # self-references point at an earlier record of the same entity
        if f.type == "reference" and f.target == entity:
            examples.target(entity)
    created, sent, expected = examples.create(entity)
    assert sent, f"{entity} has no writable field to send"
    stored = examples.records.get(entity, created["id"])

    assert {name: stored[name] for name in expected if stored[name] != expected[name]} == {}
    assert stored == created
    assert set(stored) == set(definition.system_fields()) | {f.name for f in definition.fields}
    assert stored["version"] == 1 and isinstance(stored["id"], str) and not stored["id"].isdigit()
    if definition.owned:
        assert (stored["owner"], stored["team"]) == (examples.actor.id, examples.actor.team)
    if definition.staged:
        assert stored["stage"] == definition.first_stage
    listed = examples.records.list(entity, ListQuery(limit=200))["data"]
    assert [r for r in listed if r["id"] == created["id"]] == [stored]
