"""A field type is one registry entry that answers for everything about its values: columns, check,
JSON, list filters, the API document's schemas and migration. Every contract type answers all of
it, and a new type needs nothing but its class and its entry."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import jsonschema
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles
from sqlalchemy.dialects import postgresql, sqlite

from crm_platform.engine import (
    BadRequest,
    Filter,
    ListQuery,
    RecordInvalid,
    compile_runtime,
    make_engine,
)
from crm_platform.engine.fieldtype import OPERATORS, FieldType, Invalid
from crm_platform.engine.fieldtypes import TYPES
from crm_platform.engine.messages import Message
from crm_platform.engine.system_fields import SYSTEM_FIELDS
from crm_platform.installation import Installation, Settings
from crm_platform.metadata import load_catalog, model
from crm_platform.metadata.model import Catalog, Choice, EntityDef, FieldDef
from crm_platform.web.describe import describe_entity
from crm_platform.web.openapi import build_spec

#: DESIGN.md §4, "Field types (contract)": the type names the API describes fields with.
CONTRACT_TYPES = ("text", "textarea", "email", "phone", "url", "integer", "decimal", "currency", "percent",
                  "boolean", "date", "datetime", "select", "multiselect", "reference", "user", "formula",
                  "autonumber", "geo", "file")
ENTITY_SCHEMA = Path(__file__).resolve().parents[2] / "crm_platform" / "metadata" / "schemas" / "entity.json"
DIALECTS = (sqlite.dialect(), postgresql.dialect())
ID = "0190c4e8-7a1b-7c3d-9e2f-0a1b2c3d4e5f"

#: type → (options, a JSON value written, the JSON read back, a filter value)
SAMPLES = {
    "text": ({"max_length": 20}, " Ann Lee ", "Ann Lee", "Ann"),
    "textarea": ({}, "two\nlines", "two\nlines", "two"),
    "email": ({}, "ann@example.com", "ann@example.com", "ann@example.com"),
    "phone": ({}, "+86 138-0000 1234", "+8613800001234", "13800001234"),
    "url": ({}, "https://example.com/a", "https://example.com/a", "https://example.com"),
    "integer": ({"min": 0}, 42, 42, "-7"),
    "decimal": ({"precision": 3}, "1.5", Decimal("1.500"), "-0.125"),
    "currency": ({}, 12, Decimal("12.00"), "99.99"),
    "percent": ({"precision": 1}, 12.5, Decimal("12.5"), "50"),
    "boolean": ({}, True, True, "false"),
    "date": ({}, "2026-03-15", "2026-03-15", "2026-01-01"),
    "datetime": ({}, "2026-03-15T09:30:00+08:00", "2026-03-15T01:30:00+00:00", "2026-03-15T00:00:00+00:00"),
    "select": ({"choices": ("hot", "cold")}, "hot", "hot", "cold"),
    "multiselect": ({"choices": ("vip", "new")}, ["vip", "new", "vip"], ["vip", "new"], "vip"),
    "reference": ({"target": "account"}, ID, ID, ID),
    "user": ({}, ID, ID, ID),
    "file": ({}, ID, ID, ID),
    "autonumber": ({"format": "CT-{seq}"}, "CT-0001", "CT-0001", "CT-0001"),
    "geo": ({}, {"lat": 31.23, "lon": 121.47}, {"lat": 31.23, "lon": 121.47}, None),
}


def field(name: str, **options) -> FieldDef:
    if "choices" in options:
        options["choices"] = tuple(Choice(c, {"en": c.title()}) for c in options["choices"])
    return FieldDef("f", name, {"en": "F"}, **options)


def sample(name: str) -> tuple[FieldDef, object, object, str | None]:
    options, written, read, filtered = SAMPLES[name]
    return field(name, **options), written, read, filtered


def valid(schema: dict, value) -> bool:
    """JSON Schema as the OpenAPI 3.0 document uses it (draft 4: a boolean exclusiveMinimum)."""
    return jsonschema.Draft4Validator(schema).is_valid(value)


def meta_schema_enum(key: str) -> list[str]:
    """The enum of a field's ``key`` in the entity meta-schema (what a definition may say)."""
    def find(node):
        if isinstance(node, dict):
            if "enum" in node.get(key, {}) and "label" in node:
                return node[key]["enum"]
            return next((found for value in node.values() if (found := find(value))), None)
        if isinstance(node, list):
            return next((found for value in node if (found := find(value))), None)
        return None
    return find(json.loads(ENTITY_SCHEMA.read_text("utf-8")))


def test_the_registry_the_definitions_and_the_contract_name_the_same_types():
    assert sorted(TYPES) == sorted(CONTRACT_TYPES) == sorted(meta_schema_enum("type"))
    assert set(SAMPLES) == set(CONTRACT_TYPES) - {"formula"}  # formula: below, per result type


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_value_goes_through_check_row_and_json_and_fits_its_schemas(name):
    (f, written, read, _), kind = sample(name), TYPES[name]
    value = kind.check(f)(written)
    assert kind.to_json(value) == read
    assert kind.from_row(f, kind.to_row(f, value)) == value
    assert valid(kind.input_schema(f), written)
    assert valid(kind.schema(f), read)
    assert kind.check(f)(None) is None


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_column_holds_its_field_and_compiles_on_both_databases(name):
    f = sample(name)[0]
    columns = TYPES[name].columns(f)
    assert columns and all(c.info["field"] is f and c.nullable for c in columns)
    assert [c.name for c in columns] == (["f_lat", "f_lon"] if name == "geo" else ["f"])
    for dialect in DIALECTS:
        for column in columns:
            assert column.type.compile(dialect=dialect)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_operator_a_type_answers_renders_sql_and_documents_its_value(name):
    (f, _, _, filtered), kind = sample(name), TYPES[name]
    if filtered is None:  # geo: two columns, nothing a single comparison could mean
        assert dict(kind.operators) == {}
        return
    assert set(kind.operators) <= set(OPERATORS) and "isnull" in kind.operators
    column = sa.Table("t", sa.MetaData(), *kind.columns(f)).c.f
    texts = {"isnull": "true", "in": f"{filtered},{filtered}", "contains": filtered, "startswith": filtered}
    for op, operator in kind.operators.items():
        clause = kind.filter(f, column, op, texts.get(op, filtered))
        assert all(str(clause.compile(dialect=d)) for d in DIALECTS)
        assert isinstance(operator.schema(kind, f), dict)
    assert valid(kind.query_schema(f), kind.to_json(kind.parse_query(f, filtered)))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_type_refuses_an_operator_it_does_not_answer(name):
    f, kind = sample(name)[0], TYPES[name]
    column = sa.Table("t", sa.MetaData(), *kind.columns(f)).c[0]
    for op in sorted(set(OPERATORS) - set(kind.operators)):
        with pytest.raises(Invalid) as info:
            kind.filter(f, column, op, "1")
        assert (info.value.key, info.value.params) == ("filter_op", {"op": op})


@pytest.mark.parametrize("name", sorted(set(SAMPLES) - {"geo", "multiselect"}))
def test_a_value_stored_as_text_converts_back_to_the_type(name):
    """What a migration's type change does with a column's values (geo and multiselect values are
    not one text: two columns, a JSON list)."""
    f, written, _, _ = sample(name)
    value = TYPES[name].check(f)(written)
    assert TYPES[name].convert(f, str(value)) == value


def test_geo_values_do_not_convert_from_another_column_type():
    with pytest.raises(Invalid):
        TYPES["geo"].convert(field("geo"), "31.23")


@pytest.mark.parametrize("result_type", meta_schema_enum("result_type"))
def test_a_formula_is_documented_as_its_result_type(result_type):
    f = field("formula", result_type=result_type)
    formula = TYPES["formula"]
    assert formula.columns(f) == [] and formula.stored is False and dict(formula.operators) == {}
    assert formula.schema(f) == TYPES[result_type].result_schema
    computed = TYPES[result_type].check(field(result_type))(sample(result_type)[1])
    assert valid(formula.schema(f), formula.to_json(computed))


def test_the_system_fields_are_the_models_with_a_type_a_label_and_a_filter_reader():
    assert list(SYSTEM_FIELDS) == list(model.SYSTEM_FIELDS)
    for name, system in SYSTEM_FIELDS.items():
        assert system.type in TYPES and system.label["en"] and system.query.operators, name
    assert [n for n, s in SYSTEM_FIELDS.items() if s.writable] == ["owner", "stage"]


def install(tmp_path, *entities: EntityDef, base: Catalog | None = None) -> Installation:
    """An installation on a SQLite file of ``tmp_path`` for ``entities`` (added to ``base``'s)."""
    catalog = Catalog("test", base.packs if base else (),
                      MappingProxyType({**(base.entities if base else {}), **{e.name: e for e in entities}}),
                      base.roles if base else MappingProxyType({}))
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    installation = Installation(Settings(database_url=url), make_engine(url), compile_runtime(catalog),
                                password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    installation.migrate()
    return installation


def test_renaming_a_field_renames_every_column_its_type_stores_it_in(tmp_path):
    before = install(tmp_path, EntityDef("place", {"en": "Place"}, (FieldDef("location", "geo", {"en": "Location"}),)))
    made = before.records(None).create("place", {"location": {"lat": 31.23, "lon": 121.47}})
    before.db.dispose()
    renamed = FieldDef("where", "geo", {"en": "Where"}, renamed_from="location")
    after = install(tmp_path, EntityDef("place", {"en": "Place"}, (renamed,)))
    assert after.plan() == []
    assert after.records(None).get("place", made["id"])["where"] == {"lat": 31.23, "lon": 121.47}
    after.db.dispose()


# -- a new type: one class, one entry ------------------------------------------------------------
class Rating(FieldType):
    """One to five stars."""

    expected = "rating"

    def column_type(self, f):
        return sa.SmallInteger()

    def check(self, f):
        def check(value):
            if value is None:
                return None
            if type(value) is not int or not 1 <= value <= 5:
                raise Invalid("type", expected="rating")
            return value
        return check

    def parse_query(self, f, text):
        return self.check(f)(int(text) if text.isdigit() else text)

    def schema(self, f):
        return {"type": "integer", "minimum": 1, "maximum": 5}


@pytest.fixture
def reviews(monkeypatch, tmp_path):
    """Base plus a ``review`` entity with a ``rating`` field, installed on SQLite. The registry is a
    frozen literal dict that modules import by name: a copy with ``rating`` added is put wherever it
    was imported; no other code changes."""
    registry = MappingProxyType({**TYPES, "rating": Rating()})
    for module in [m for m in sys.modules.values() if m.__name__.startswith("crm_platform")]:
        if getattr(module, "TYPES", None) is TYPES:
            monkeypatch.setattr(module, "TYPES", registry)
    review = EntityDef("review", {"en": "Review"}, (FieldDef("title", "text", {"en": "Title"}),
                                                   FieldDef("stars", "rating", {"en": "Stars"})))
    installation = install(tmp_path, review, base=load_catalog("base"))
    yield installation
    installation.db.dispose()


def test_a_new_type_gets_a_column_a_check_json_and_filters(reviews):
    er = reviews.runtime.entity("review")
    assert isinstance(er.table.c.stars.type, sa.SmallInteger)
    records = reviews.records(None)
    for title, stars in [("fine", 3), ("great", 5), ("unrated", None)]:
        assert records.create("review", {"title": title, "stars": stars})["stars"] == stars
    best = records.list("review", ListQuery(filters=[Filter("stars", "gte", "4")]))
    assert [r["title"] for r in best["data"]] == ["great"]
    with pytest.raises(RecordInvalid) as info:
        records.create("review", {"title": "too good", "stars": 6})
    assert {name: [m.key for m in messages] for name, messages in info.value.fields.items()} == {"stars": ["type"]}
    with pytest.raises(BadRequest) as info:
        records.list("review", ListQuery(filters=[Filter("stars", "contains", "4")]))
    assert info.value.message.params["detail"] == Message("filter_op", {"op": "contains"})


def test_a_new_type_is_in_the_api_document_and_the_description(reviews):
    spec = build_spec(reviews.runtime)
    assert spec["components"]["schemas"]["ReviewRecord"]["properties"]["stars"] == {
        "type": "integer", "minimum": 1, "maximum": 5, "nullable": True, "description": "Stars",
        "x-crm-type": "rating"}
    assert spec["components"]["schemas"]["ReviewCreate"]["properties"]["stars"]["maximum"] == 5
    parameters = {p["name"]: p["schema"] for p in spec["paths"]["/api/records/review"]["get"]["parameters"]}
    assert parameters["filter[stars][gte]"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert "filter[stars][contains]" not in parameters
    described = {f["name"]: f for f in describe_entity(reviews.runtime.entity("review").entity)["fields"]}
    assert described["stars"]["type"] == "rating"
