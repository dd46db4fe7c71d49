"""Schema change on a real database (SQLite and PostgreSQL): plan first, keep data, archive instead of drop."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles

from crm_platform.engine import compile_runtime, make_engine
from crm_platform.engine.query import Filter, ListQuery
from crm_platform.installation import Installation, SchemaBehind, Settings
from crm_platform.metadata import load_catalog

EDUCATION = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "education"
L = {"en": "X", "zh": "X"}
V1 = [{"name": "name", "type": "text", "label": L, "required": True},
      {"name": "code", "type": "text", "label": L, "max_length": 40},
      {"name": "qty", "type": "text", "label": L, "max_length": 20},
      {"name": "legacy_note", "type": "text", "label": L}]


def field(name: str, kind: str = "text", **extra) -> dict:
    return {"name": name, "type": kind, "label": L, **extra}


@pytest.fixture
def opened(database, tmp_path):
    """``opened(fields)`` → an Installation of a one-entity pack ``item`` with those fields, on one database."""
    engines, count = [], [0]

    def open_for(fields: list[dict], extra_entities: tuple = ()) -> Installation:
        count[0] += 1
        folder = tmp_path / f"pack{count[0]}"
        (folder / "entities").mkdir(parents=True)
        (folder / "pack.json").write_text(json.dumps({"name": "shop", "version": "1.0.0", "label": L}))
        for doc in ({"name": "item", "label": L, "fields": fields}, *extra_entities):
            (folder / "entities" / f"{doc['name']}.json").write_text(json.dumps(doc))
        return install(load_catalog([str(folder)]))

    def install(catalog) -> Installation:
        url, options = database
        engine = make_engine(url, **options)
        engines.append(engine)
        return Installation(Settings(database_url=url), engine, compile_runtime(catalog),
                            password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    open_for.install = install
    yield open_for
    for engine in engines:
        engine.dispose()


def steps(inst: Installation) -> list[tuple[str, str, str]]:
    return [(s.kind, s.table, s.name) for s in inst.plan()]


def column_values(inst: Installation, table: str, column: str) -> list:
    with inst.db.connect() as conn:
        values = conn.execute(sa.text(f'SELECT "{column}" FROM "{table}"')).scalars()
        return sorted(values, key=lambda v: (v is None, str(v)))


def columns(inst: Installation, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(inst.db).get_columns(table)}


def seeded(opened, rows=({"name": "Bolt", "code": "A-1", "qty": "12", "legacy_note": "old"},)) -> Installation:
    v1 = opened(V1)
    v1.migrate()
    for row in rows:
        v1.records(None).create("item", row)
    return v1


def test_an_empty_database_is_behind_until_migrated(opened):
    inst = opened(V1)
    planned = steps(inst)
    assert {("create_table", t, "") for t in ("item", "crm_users", "crm_teams", "crm_audit")} <= set(planned)
    assert {kind for kind, _, _ in planned} == {"create_table"}
    with pytest.raises(SchemaBehind) as info:
        inst.check_schema()
    assert "crm migrate --plan" in str(info.value) and "create_table" in str(info.value)
    done = inst.migrate()
    assert [(s.kind, s.table, s.name) for s in done] == planned
    assert inst.plan() == []
    inst.check_schema()


def test_added_indexed_and_renamed_fields_are_planned_then_applied_keeping_data(opened):
    seeded(opened)
    v2 = opened([field("name", required=True), field("sku", max_length=40, renamed_from="code"),
                 field("qty", max_length=20), field("legacy_note"), field("color"),
                 field("weight", "integer", indexed=True)])
    planned = steps(v2)
    assert sorted(planned) == [("add_column", "item", "color"), ("add_column", "item", "weight"),
                               ("add_index", "item", "ix_item_weight"), ("rename_column", "item", "sku")]
    rename = next(s for s in v2.plan() if s.kind == "rename_column")
    assert rename.detail == "from code; data kept" and rename.blocked is None
    with pytest.raises(SchemaBehind) as info:
        v2.check_schema()
    assert sorted((s.kind, s.name) for s in info.value.steps) == sorted((k, n) for k, _, n in planned)

    assert sorted((s.kind, s.name) for s in v2.migrate()) == sorted((k, n) for k, _, n in planned)
    assert v2.plan() == []
    v2.check_schema()
    assert "code" not in columns(v2, "item") and column_values(v2, "item", "sku") == ["A-1"]
    assert "ix_item_weight" in {i["name"] for i in sa.inspect(v2.db).get_indexes("item")}
    [item] = v2.records(None).list("item")["data"]
    assert (item["sku"], item["color"], item["weight"]) == ("A-1", None, None)
    assert v2.records(None).update("item", item["id"], {"weight": 5}, 1)["weight"] == 5


def test_a_removed_field_or_entity_is_archived_and_kept_unless_dropping_is_asked(opened):
    v1 = opened(V1, extra_entities=({"name": "gadget", "label": L, "fields": [field("title")]},))
    v1.migrate()
    v1.records(None).create("item", {"name": "Bolt", "legacy_note": "keep me"})
    v1.records(None).create("gadget", {"title": "Widget"})
    v2 = opened([f for f in V1 if f["name"] != "legacy_note"])
    assert steps(v2) == [("archive_column", "item", "legacy_note"), ("archive_table", "gadget", "")]
    assert v2.plan()[0].detail == "no longer defined; kept with its data"
    v2.check_schema()  # archived leftovers do not stop the app

    assert v2.migrate() == []
    assert column_values(v2, "item", "legacy_note") == ["keep me"]
    assert column_values(v2, "gadget", "title") == ["Widget"]
    assert v2.records(None).list("item")["data"][0]["name"] == "Bolt"

    dropped = v2.migrate(drop_archived=True)
    assert [(s.kind, s.table, s.name) for s in dropped] == [("archive_column", "item", "legacy_note"),
                                                            ("archive_table", "gadget", "")]
    assert "legacy_note" not in columns(v2, "item") and "gadget" not in sa.inspect(v2.db).get_table_names()
    assert column_values(v2, "item", "name") == ["Bolt"]
    assert v2.plan() == []


def test_a_type_change_that_would_lose_values_is_blocked_until_the_data_is_fixed(opened):
    v1 = seeded(opened, rows=[{"name": "Bolt", "qty": "12"}, {"name": "Nut", "qty": "a dozen"},
                              {"name": "Pin"}])
    v2 = opened([field("name", required=True), field("code", max_length=40), field("qty", "integer"),
                 field("legacy_note")])
    [step] = v2.plan()
    assert (step.kind, step.table, step.name, step.blocked) == ("change_type", "item", "qty",
                                                               "1 value(s) would not convert")
    assert "BLOCKED: 1 value(s) would not convert" in str(step)
    assert v2.migrate() == []
    assert column_values(v2, "item", "qty") == ["12", "a dozen", None]
    with pytest.raises(SchemaBehind):
        v2.check_schema()

    with v1.db.begin() as conn:
        conn.execute(sa.text("UPDATE item SET qty = '13' WHERE qty = 'a dozen'"))
    [step] = v2.plan()
    assert (step.kind, step.blocked) == ("change_type", None)
    assert [s.kind for s in v2.migrate()] == ["change_type"]
    assert v2.plan() == []
    v2.check_schema()
    stored = {r["name"]: r["qty"] for r in v2.records(None).list("item")["data"]}
    assert stored == {"Bolt": 12, "Nut": 13, "Pin": None}


def test_shortening_a_text_field_counts_the_values_that_no_longer_fit(opened):
    seeded(opened, rows=[{"name": "Bolt", "code": "A-1"}, {"name": "Nut", "code": "LONG-CODE-123"}])
    v2 = opened([field("name", required=True), field("code", max_length=5), field("qty", max_length=20),
                 field("legacy_note")])
    [step] = v2.plan()
    assert (step.kind, step.name, step.blocked) == ("change_type", "code", "1 value(s) would not convert")


def test_renaming_an_indexed_field_leaves_nothing_pending(opened):
    v1 = opened([field("name", required=True), field("code", indexed=True)])
    v1.migrate()
    v1.records(None).create("item", {"name": "Bolt", "code": "A-1"})
    v2 = opened([field("name", required=True), field("sku", indexed=True, renamed_from="code")])
    assert sorted(steps(v2)) == [("add_index", "item", "ix_item_sku"), ("drop_index", "item", "ix_item_code"),
                                 ("rename_column", "item", "sku")]
    v2.migrate()
    assert v2.plan() == []
    assert column_values(v2, "item", "sku") == ["A-1"]


def test_an_overlay_on_base_adds_its_columns_and_tables_to_an_installed_base(opened, catalog):
    base = opened.install(catalog)
    base.migrate()
    base.accounts.create_team("East")
    rep = base.accounts.actor(base.accounts.create_user("rep", "rep-password", "rep", "East"))
    lead = base.records(rep).create("lead", {"name": "Li", "source": "ad"})

    education = opened.install(load_catalog([str(EDUCATION)]))
    assert sorted(steps(education)) == [("add_column", "lead", "course_interest"),
                                        ("add_index", "lead", "ix_lead_course_interest"),
                                        ("create_table", "course", "")]
    with pytest.raises(SchemaBehind):
        education.check_schema()
    education.migrate()
    assert education.plan() == []
    moved = education.records(rep).update("lead", lead["id"], {"course_interest": "math"}, 1)
    assert (moved["name"], moved["source"], moved["course_interest"], moved["stage"]) == ("Li", "ad", "math", "new")
    course = education.records(None).create("course", {"name": "Math", "hours": 40})  # reps may only read courses
    assert education.records(rep).get("course", course["id"])["hours"] == 40



def test_a_value_too_large_for_the_new_integer_type_blocks_the_change(opened):
    seeded(opened, rows=[{"name": "Bolt", "qty": "99999999999999999999"}, {"name": "Nut", "qty": "7"}])
    v2 = opened([field("name", required=True), field("code", max_length=40), field("qty", "integer"),
                 field("legacy_note")])
    [step] = v2.plan()
    assert (step.kind, step.blocked) == ("change_type", "1 value(s) would not convert")


# Exact amounts: SQLite keys, values written before exact storage, precision changes.

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


def priced(opened, prices, **price_options) -> Installation:
    """An installed ``item`` with a currency ``price`` and one item per price (named by its price)."""
    inst = opened([field("name", required=True), field("price", "currency", **price_options)])
    inst.migrate()
    for price in prices:
        inst.records(None).create("item", {"name": str(price), "price": price})
    return inst


def prices_by(inst: Installation, *filters: Filter) -> list[tuple[str, object]]:
    """(name, price) of every item, sorted by price in SQL, after the filters."""
    listed = inst.records(None).list("item", ListQuery(filters=list(filters), sort=["price", "name"], limit=100))
    return [(r["name"], r["price"]) for r in listed["data"]]


@SQLITE_ONLY
def test_amounts_stored_as_reals_by_an_older_version_are_rewritten_as_keys_then_sort_and_filter_exactly(opened):
    inst = priced(opened, ["5.50"])
    with inst.db.begin() as conn:  # what a version before exact storage wrote: REAL (and INTEGER) values
        for name, price in [("big", 1234.56), ("small", 0.25), ("negative", -20.75), ("whole", 7.0)]:
            conn.execute(sa.text("INSERT INTO item (id, version, created_at, updated_at, name, price) "
                                 "SELECT :id, 1, created_at, updated_at, :name, :price FROM item WHERE name = '5.50'"),
                         {"id": name, "name": name, "price": price})
    before = [name for name, _ in prices_by(inst)]
    assert before == ["negative", "small", "whole", "big", "5.50"]  # REALs sort before every key: wrong
    [step] = inst.plan()
    assert (step.kind, step.table, step.name, step.blocked) == ("rewrite_values", "item", "price", None)
    assert step.detail == "4 stored value(s) to re-encode as exact 2-place keys"
    assert "rewrite_values  item.price  (4 stored value(s)" in str(step)
    with pytest.raises(SchemaBehind):
        inst.check_schema()

    assert [(s.kind, s.name) for s in inst.migrate()] == [("rewrite_values", "price")]
    assert inst.plan() == []
    inst.check_schema()
    assert column_values(inst, "item", "price") == sorted(
        ["N999999999999999979.25", "P000000000000000000.25", "P000000000000000005.50",
         "P000000000000000007.00", "P000000000000001234.56"])
    assert prices_by(inst) == [("negative", Decimal("-20.75")), ("small", Decimal("0.25")),
                               ("5.50", Decimal("5.50")), ("whole", Decimal("7.00")),
                               ("big", Decimal("1234.56"))]
    assert prices_by(inst, Filter("price", "gt", "0.25")) == [("5.50", Decimal("5.50")), ("whole", Decimal("7.00")),
                                                              ("big", Decimal("1234.56"))]
    assert prices_by(inst, Filter("price", "lt", "0")) == [("negative", Decimal("-20.75"))]


def test_an_up_to_date_database_with_amounts_plans_nothing(opened):
    inst = priced(opened, ["1234.56", "-0.50", None])
    assert inst.plan() == []
    inst.check_schema()


def test_more_places_for_an_amount_with_data_converts_every_value_and_keeps_them_ordered(opened):
    priced(opened, ["1234.56", "-0.50", "0.25", None])
    v2 = opened([field("name", required=True), field("price", "currency", precision=3)])
    [step] = v2.plan()
    assert (step.kind, step.name, step.blocked) == ("change_type", "price", None)
    assert [(s.kind, s.name) for s in v2.migrate()] == [("change_type", "price")]
    assert v2.plan() == []
    assert prices_by(v2) == [("-0.50", Decimal("-0.500")), ("0.25", Decimal("0.250")),
                             ("1234.56", Decimal("1234.560")), ("None", None)]
    created = v2.records(None).create("item", {"name": "new", "price": "0.255"})
    assert created["price"] == Decimal("0.255")
    assert prices_by(v2, Filter("price", "gt", "0.25")) == [("new", Decimal("0.255")),
                                                            ("1234.56", Decimal("1234.560"))]


def test_fewer_places_for_an_amount_is_blocked_by_the_values_that_would_lose_digits(opened):
    v1 = priced(opened, ["1234.56", "-0.50", "2.05", "7.00"])
    v2 = opened([field("name", required=True), field("price", "currency", precision=1)])
    [step] = v2.plan()
    assert (step.kind, step.name, step.blocked) == ("change_type", "price", "2 value(s) would not convert")
    assert v2.migrate() == []
    assert prices_by(v1)[-1] == ("1234.56", Decimal("1234.56"))

    for name in ("1234.56", "2.05"):
        [item] = [r for r in v1.records(None).list("item")["data"] if r["name"] == name]
        v1.records(None).update("item", item["id"], {"price": "3.10"}, item["version"])
    assert v2.plan()[0].blocked is None
    v2.migrate()
    assert prices_by(v2) == [("-0.50", Decimal("-0.5")), ("1234.56", Decimal("3.1")), ("2.05", Decimal("3.1")),
                             ("7.00", Decimal("7.0"))]


def test_an_amount_becoming_an_integer_converts_whole_values_and_is_blocked_by_fractions(opened):
    v1 = priced(opened, ["12.00", "-3.00", "2.50", None])
    v2 = opened([field("name", required=True), field("price", "integer")])
    [step] = v2.plan()
    assert (step.kind, step.name, step.blocked) == ("change_type", "price", "1 value(s) would not convert")

    [item] = [r for r in v1.records(None).list("item")["data"] if r["name"] == "2.50"]
    v1.records(None).update("item", item["id"], {"price": "2"}, item["version"])
    assert v2.plan()[0].blocked is None
    v2.migrate()
    assert v2.plan() == []
    assert prices_by(v2) == [("-3.00", -3), ("2.50", 2), ("12.00", 12), ("None", None)]


def test_an_amount_too_large_for_fewer_whole_digits_blocks_the_change(opened):
    priced(opened, ["123456789012345678.90", "1.00"])
    v2 = opened([field("name", required=True), field("price", "currency", precision=4)])
    [step] = v2.plan()
    assert (step.kind, step.name, step.blocked) == ("change_type", "price", "1 value(s) would not convert")


def test_an_amount_becoming_text_keeps_its_digits_not_its_storage_form(opened):
    priced(opened, ["1234.50", "-0.05"])
    v2 = opened([field("name", required=True), field("price", max_length=30)])
    [step] = v2.plan()
    assert (step.kind, step.name, step.blocked) == ("change_type", "price", None)
    v2.migrate()
    assert column_values(v2, "item", "price") == ["-0.05", "1234.50"]
    assert prices_by(v2, Filter("price", "eq", "1234.50")) == [("1234.50", "1234.50")]
