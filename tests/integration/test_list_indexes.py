"""Indexes follow the scopes and list views that are queried: a rep's (owner), a team's and everyone's
page of each list view, and a rep's / a team's list of one stage newest first, read off an index.
Existing installations get the new indexes through the migration plan (``add_index``)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles

from crm_platform.engine import compile_runtime, make_engine
from crm_platform.installation import Installation, SchemaBehind, Settings
from crm_platform.metadata import load_catalog

L = {"en": "X", "zh": "X"}


def live_indexes(inst: Installation, table: str) -> dict[str, list[str]]:
    return {i["name"]: i["column_names"] for i in sa.inspect(inst.db).get_indexes(table)}


def open_installation(runtime, database) -> Installation:
    url, options = database
    return Installation(Settings(database_url=url), make_engine(url, **options), runtime,
                        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))


def test_a_reps_and_a_teams_list_of_one_stage_newest_first_have_their_indexes(installation):
    indexes = live_indexes(installation, "opportunity")
    assert indexes["ix_opportunity_owner_stage_created"] == ["owner", "stage", "created_at", "id"]
    assert indexes["ix_opportunity_team_stage_created"] == ["team", "stage", "created_at", "id"]
    assert live_indexes(installation, "lead")["ix_lead_owner_stage_created"] == ["owner", "stage", "created_at", "id"]


def test_each_list_view_has_an_index_per_record_scope_with_its_filters_then_its_sort(installation):
    indexes = live_indexes(installation, "opportunity")
    # "won": filter stage = won, sort -expected_close_date
    assert indexes["ix_opportunity_lv_owner_won"] == ["owner", "stage", "expected_close_date", "id"]
    assert indexes["ix_opportunity_lv_team_won"] == ["team", "stage", "expected_close_date", "id"]
    assert indexes["ix_opportunity_lv_all_won"] == ["stage", "expected_close_date", "id"]
    # "all": no filter, the default sort expected_close_date
    assert indexes["ix_opportunity_lv_owner_all"] == ["owner", "expected_close_date", "id"]
    # product is not owned: only the unrestricted index ("active": status = active, sort sku)
    products = live_indexes(installation, "product")
    assert products["ix_product_lv_all_active"] == ["status", "sku", "id"]
    assert not any(name.startswith(("ix_product_lv_owner", "ix_product_lv_team")) for name in products)


def test_a_list_view_already_served_by_an_index_gets_no_second_one(installation):
    # lead's "new_leads" (stage = new, -created_at) is served by the stage / owner+stage / team+stage indexes
    leads = live_indexes(installation, "lead")
    assert not [name for name in leads if "_lv_" in name]
    columns = [tuple(c) for c in leads.values()]
    assert len(columns) == len(set(columns)), "two indexes over the same columns"


def test_an_existing_installation_gets_a_missing_list_index_from_the_migration_plan(runtime, database):
    inst = open_installation(runtime, database)
    try:
        inst.migrate()
        with inst.db.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_opportunity_owner_stage_created"))
            conn.execute(sa.text("DROP INDEX ix_opportunity_lv_team_won"))
        assert [(s.kind, s.table, s.name) for s in inst.plan()] == [
            ("add_index", "opportunity", "ix_opportunity_lv_team_won"),
            ("add_index", "opportunity", "ix_opportunity_owner_stage_created")]
        with pytest.raises(SchemaBehind):
            inst.check_schema()
        inst.migrate()
        assert inst.plan() == []
        indexes = live_indexes(inst, "opportunity")
        assert indexes["ix_opportunity_owner_stage_created"] == ["owner", "stage", "created_at", "id"]
        assert indexes["ix_opportunity_lv_team_won"] == ["team", "stage", "expected_close_date", "id"]
    finally:
        inst.db.dispose()


def test_a_packs_own_list_views_get_indexes_and_a_formula_sort_gets_none(tmp_path):
    folder = tmp_path / "shop"
    (folder / "entities").mkdir(parents=True)
    (folder / "pack.json").write_text(json.dumps({"name": "shop", "version": "1.0.0", "label": L}))
    fields = [{"name": "name", "type": "text", "label": L, "required": True},
              {"name": "status", "type": "select", "label": L, "choices": [{"value": "open", "label": L}]},
              {"name": "due", "type": "date", "label": L},
              {"name": "qty", "type": "integer", "label": L},
              {"name": "double", "type": "formula", "label": L, "expression": "qty * 2"}]
    views = {"open": {"columns": ["name"], "filters": {"status": "open"}, "sort": ["-due"]},
             "by_double": {"columns": ["name"], "sort": ["double"]}}
    (folder / "entities" / "ticket.json").write_text(json.dumps(
        {"name": "ticket", "label": L, "owned": True, "fields": fields, "list_views": views}))
    table = compile_runtime(load_catalog([str(folder)])).entity("ticket").table
    indexes = {i.name: [c.name for c in i.columns] for i in table.indexes}
    assert indexes["ix_ticket_lv_owner_open"] == ["owner", "status", "due", "id"]
    assert indexes["ix_ticket_lv_team_open"] == ["team", "status", "due", "id"]
    assert indexes["ix_ticket_lv_all_open"] == ["status", "due", "id"]
    assert not [name for name in indexes if "by_double" in name]
