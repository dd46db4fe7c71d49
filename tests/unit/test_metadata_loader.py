"""Loading definitions: every mistake in a pack is reported as `file: /json/pointer: message`, all at once.

Each test writes a small pack into ``tmp_path`` (and works from there, so the reported file names are
short and exact) and asserts the precise problems ``load_catalog`` raises.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from crm_platform.metadata import DefinitionError, Problem, load_catalog

L = {"en": "X", "zh": "X"}


def text(name: str, **extra) -> dict:
    return {"name": name, "type": "text", "label": L, **extra}


def entity(name: str = "thing", fields: list | None = None, **extra) -> dict:
    return {"name": name, "label": L, "fields": fields if fields is not None else [text("title")], **extra}


def write_pack(root: Path, name: str = "shop", entities=(), roles=(), raw: dict | None = None,
               dump=lambda doc: json.dumps(doc, indent=2, ensure_ascii=False), **manifest) -> Path:
    """A pack folder ``root/name`` with the given entity and role documents (``raw``: file → text)."""
    folder = root / name
    (folder / "entities").mkdir(parents=True)
    (folder / "roles").mkdir()
    (folder / "pack.json").write_text(dump({"name": name, "version": "1.0.0", "label": {"en": name}, **manifest}))
    for doc in entities:
        (folder / "entities" / f"{doc['name']}.json").write_text(dump(doc))
    for doc in roles:
        (folder / "roles" / f"{doc['name']}.json").write_text(dump(doc))
    for file, content in (raw or {}).items():
        (folder / file).write_text(content)
    return folder


def problems(folder: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(DefinitionError) as info:
        load_catalog([str(folder)])
    assert all(isinstance(p, Problem) for p in info.value.problems)
    return [(p.file, p.pointer, p.message) for p in info.value.problems]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Work from tmp_path so problems name files as `shop/entities/thing.json`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_PACKS_PATH", raising=False)


E = "shop/entities/thing.json"


# --- files and the meta-schema ------------------------------------------------------------------------

def test_invalid_json_is_reported_with_line_and_column(tmp_path):
    folder = write_pack(tmp_path, raw={"entities/thing.json": '{"name": "thing",\n  "fields": [,]}'})
    assert problems(folder) == [(E, "", "invalid JSON at line 2 column 14: Expecting value")]


def test_unknown_field_type_suggests_the_closest_type(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[text("title"), text("code", type="txt")])])
    assert problems(folder) == [(E, "/fields/1/type", "unknown type 'txt' (did you mean 'text'?)")]


def test_unknown_key_suggests_the_closest_key(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[text("title", max_lenght=10)])])
    assert problems(folder) == [(E, "/fields/0/max_lenght", "unknown key 'max_lenght' (did you mean 'max_length'?)")]


def test_problem_prints_as_file_pointer_message(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[text("code", type="txt")])])
    with pytest.raises(DefinitionError) as info:
        load_catalog([str(folder)])
    assert str(info.value) == f"{E}: /fields/0/type: unknown type 'txt' (did you mean 'text'?)"


def test_bad_regex_pattern_is_rejected(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[text("code", pattern="([a-z")])])
    assert problems(folder) == [(E, "/fields/0/pattern", "'([a-z' is not a 'regex'")]


# --- checks the schema cannot make --------------------------------------------------------------------

def test_reference_to_unknown_entity_is_reported(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[
        text("title"), {"name": "parent", "type": "reference", "label": L, "target": "acount"}])])
    assert problems(folder) == [(E, "/fields/1/target", "unknown reference target 'acount'")]


def test_select_without_choices_is_reported(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[{"name": "grade", "type": "select", "label": L}])])
    assert problems(folder) == [(E, "/fields/0/choices", "a select field needs choices")]


@pytest.mark.parametrize("extra, pointer", [
    ({"forms": {"default": {"sections": [{"columns": [["title"], ["ghost"]]}]}}},
     "/forms/default/sections/0/columns/1/0"),
    ({"forms": {"edit": {"tabs": [{"sections": [{"fields": ["title", "ghost"]}]}]}}},
     "/forms/edit/tabs/0/sections/0/fields/1"),
    ({"list_views": {"all": {"columns": ["title", "ghost"]}}}, "/list_views/all/columns/1"),
    ({"list_views": {"all": {"columns": ["title"], "sort": ["ghost"]}}}, "/list_views/all/sort/0"),
    ({"search_fields": ["title", "ghost"]}, "/search_fields/1"),
    ({"duplicate_rules": [{"name": "same", "fields": ["ghost"]}]}, "/duplicate_rules/0/fields/0"),
], ids=["form-columns", "form-tabs", "list-view-columns", "list-view-sort", "search-fields", "duplicate-rule"])
def test_layouts_and_rules_naming_unknown_fields_are_reported(tmp_path, extra, pointer):
    folder = write_pack(tmp_path, entities=[entity(**extra)])
    assert problems(folder) == [(E, pointer, "unknown field 'ghost'")]


def test_descending_sort_on_unknown_field_is_reported_as_written(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(default_sort=["-created_at", "-ghost"])])
    assert problems(folder) == [(E, "/default_sort/1", "unknown field '-ghost'")]


AMOUNT = {"name": "amount", "type": "currency", "label": L}


@pytest.mark.parametrize("extra, fields, expected", [
    ({"kanban": {"field": "title"}}, None,
     [("/kanban/field", "kanban needs the stage or a select field, not 'title'")]),
    ({"title": "{titel} #{id}"}, None, [("/title", "unknown field 'titel' in title")]),
    ({"initial_stage": "open"}, None, [("/initial_stage", "unknown stage 'open'")]),
    ({"pooled": True}, None, [("/pooled", "a pooled entity must also be owned")]),
    ({"forms": {"default": {"related": [{"entity": "thing", "field": "title"}]}}}, None,
     [("/forms/default/related/0/field", "'thing.title' is not a reference to 'thing'")]),
    ({"forms": {"default": {"sections": [{"fields": ["title"], "visible_if": "titel == 'x'"}]}}}, None,
     [("/forms/default/sections/0/visible_if",
       "expression \"titel == 'x'\": unknown name 'titel' (did you mean 'title'?)")]),
    ({}, [text("title", required_if="amout > 1"), dict(AMOUNT, default_expr="len(title) +")],
     [("/fields/0/required_if", "expression 'amout > 1': unknown name 'amout' (did you mean 'amount'?)"),
      ("/fields/1/default_expr", "expression 'len(title) +': invalid syntax at the end: invalid syntax")]),
    ({}, [text("title", visible_if="user.rank == 1")],
     [("/fields/0/visible_if", "expression 'user.rank == 1': 'user' has no attribute 'rank' "
                               "(it has id, role, team, username)")]),
    ({}, [text("title"), {"name": "total", "type": "formula", "label": L}],
     [("/fields/1/expression", "a formula field needs an expression")]),
    ({}, [{"name": "title", "type": "text"}], [("/fields/0/label", "a label is required (at least 'en')")]),
    ({"stages": [{"name": "open", "label": L, "gate": {"condition": "amout > 0"}}]}, [text("title"), AMOUNT],
     [("/stages/0/gate/condition", "expression 'amout > 0': unknown name 'amout' (did you mean 'amount'?)")]),
], ids=["kanban", "title", "initial-stage", "pooled", "related", "section-visible-if", "field-expressions",
        "user-attribute", "formula-without-expression", "label", "gate-condition"])
def test_every_rule_a_schema_cannot_check_is_reported_with_its_pointer(tmp_path, extra, fields, expected):
    folder = write_pack(tmp_path, entities=[entity(fields=fields, **extra)])
    assert problems(folder) == [(E, pointer, message) for pointer, message in expected]


def test_unknown_list_view_filter_field_is_reported_at_its_key(tmp_path):
    view = {"columns": ["title"], "filters": {"ghost": 1}}
    folder = write_pack(tmp_path, entities=[entity(list_views={"open": view})])
    assert problems(folder) == [(E, "/list_views/open/filters/ghost", "unknown field 'ghost'")]


def test_stage_transition_and_gate_naming_unknown_names_are_reported(tmp_path):
    stages = [{"name": "open", "label": L, "transitions": ["won", "wno"]},
              {"name": "won", "label": L, "gate": {"required": ["title", "amount"]}}]
    folder = write_pack(tmp_path, entities=[entity(stages=stages)])
    assert problems(folder) == [(E, "/stages/0/transitions/1", "unknown stage 'wno'"),
                                (E, "/stages/1/gate/required/1", "unknown field 'amount'")]


def test_formula_typo_names_file_pointer_and_suggestion(tmp_path):
    fields = [{"name": "amount", "type": "currency", "label": L},
              {"name": "doubled", "type": "formula", "label": L, "expression": "amout * 2"}]
    folder = write_pack(tmp_path, entities=[entity(fields=fields)])
    assert problems(folder) == [
        (E, "/fields/1/expression", "expression 'amout * 2': unknown name 'amout' (did you mean 'amount'?)")]


def test_reserved_field_name_is_rejected(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[text("title"), text("owner")])])
    assert problems(folder) == [(E, "/fields/1/name", "'owner' is a reserved name (system field)")]


def test_duplicate_field_names_are_rejected(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[text("title"), text("code"), text("title")])])
    assert problems(folder) == [(E, "/fields", "field 'title' is defined twice")]


def test_min_greater_than_max_is_rejected(tmp_path):
    folder = write_pack(tmp_path, entities=[entity(fields=[
        {"name": "qty", "type": "integer", "label": L, "min": 10, "max": 1}])])
    assert problems(folder) == [(E, "/fields/0/min", "min 10 is greater than max 1")]


def test_dependent_choice_when_value_must_be_a_parent_choice(tmp_path):
    region = {"name": "region", "type": "select", "label": L, "choices": [{"value": "east"}, {"value": "north"}]}
    city = {"name": "city", "type": "select", "label": L, "depends_on": "region",
            "choices": [{"value": "shanghai", "when": ["east"]}, {"value": "lhasa", "when": ["west"]}]}
    folder = write_pack(tmp_path, entities=[entity(fields=[region, city])])
    assert problems(folder) == [(E, "/fields/1/choices/1/when", "'west' is not a choice of 'region'")]


def test_role_granting_unknown_entity_or_field_is_reported(tmp_path):
    role = {"name": "rep", "label": L, "entities": {
        "thing": {"actions": {"read": "own"}, "fields": {"titel": "read"}, "readonly_if": "titel == 'x'"},
        "gadget": {"actions": {"read": "all"}}}}
    folder = write_pack(tmp_path, entities=[entity()], roles=[role])
    assert problems(folder) == [
        ("shop/roles/rep.json", "/entities/thing/fields/titel", "unknown field 'titel' of 'thing'"),
        ("shop/roles/rep.json", "/entities/thing/readonly_if",
         "expression \"titel == 'x'\": unknown name 'titel' (did you mean 'title'?)"),
        ("shop/roles/rep.json", "/entities/gadget", "unknown entity 'gadget'")]


def test_sharing_rule_expression_with_unknown_field_is_reported(tmp_path):
    role = {"name": "rep", "label": L, "sharing": [{"entity": "thing", "condition": "titel == 'x'", "level": "read"}]}
    folder = write_pack(tmp_path, entities=[entity()], roles=[role])
    assert problems(folder) == [("shop/roles/rep.json", "/sharing/0/condition",
                                 "expression \"titel == 'x'\": unknown name 'titel' (did you mean 'title'?)")]


# --- packs that extend packs --------------------------------------------------------------------------

def test_extending_an_unknown_pack_is_reported(tmp_path):
    folder = write_pack(tmp_path, extends=["basse"], entities=[entity()])
    [(file, pointer, message)] = problems(folder)
    assert (file, pointer) == ("shop/pack.json", "/extends")
    assert message.startswith("pack 'basse' not found (looked in ")


def test_cyclic_extends_is_reported(tmp_path):
    write_pack(tmp_path, name="alpha", extends=["beta"], entities=[entity()])
    write_pack(tmp_path, name="beta", extends=["alpha"])
    [(file, pointer, message)] = problems(tmp_path / "alpha")
    assert (file, pointer) == ("alpha/pack.json", "/extends")
    assert message.startswith("packs depend on each other in a cycle: ")
    assert message.count("alpha") == 2 and "beta" in message


# --- every problem at once ----------------------------------------------------------------------------

def test_one_load_reports_every_semantic_problem_at_once(tmp_path):
    fields = [text("title"), text("owner"),
              {"name": "account", "type": "reference", "label": L, "target": "nobody"},
              {"name": "kind", "type": "multiselect", "label": L},
              {"name": "score", "type": "formula", "label": L, "expression": "len(titl)"}]
    role = {"name": "rep", "label": L, "entities": {"widget": {"actions": {"read": "all"}}}}
    folder = write_pack(tmp_path, entities=[entity(fields=fields)], roles=[role])
    assert problems(folder) == [
        (E, "/fields/1/name", "'owner' is a reserved name (system field)"),
        (E, "/fields/2/target", "unknown reference target 'nobody'"),
        (E, "/fields/3/choices", "a multiselect field needs choices"),
        (E, "/fields/4/expression", "expression 'len(titl)': unknown name 'titl' (did you mean 'title'?)"),
        ("shop/roles/rep.json", "/entities/widget", "unknown entity 'widget'"),
    ]


def test_one_load_reports_every_schema_problem_at_once(tmp_path):
    bad_entity = entity(fields=[text("title", type="txt"), text("code", requird=True)], icon=7)
    bad_role = {"name": "rep", "entities": {"thing": {"actions": {"read": "everyone"}}}}
    folder = write_pack(tmp_path, entities=[bad_entity], roles=[bad_role],
                        raw={"entities/broken.json": "{"})
    assert problems(folder) == [
        ("shop/entities/broken.json", "", "invalid JSON at line 1 column 2: "
                                          "Expecting property name enclosed in double quotes"),
        (E, "/fields/0/type", "unknown type 'txt' (did you mean 'text'?)"),
        (E, "/fields/1/requird", "unknown key 'requird' (did you mean 'required'?)"),
        (E, "/icon", "7 is not of type 'string'"),
        ("shop/roles/rep.json", "/entities/thing/actions/read",
         "'everyone' is not one of ['none', 'own', 'team', 'subtree', 'all']"),
    ]


def test_schema_and_semantic_problems_in_different_files_are_reported_together(tmp_path):
    good_schema = entity("gadget", fields=[text("title"),
                                           {"name": "thing", "type": "reference", "label": L, "target": "thingy"}])
    bad_schema = entity(fields=[text("title", type="txt")])
    folder = write_pack(tmp_path, entities=[good_schema, bad_schema])
    assert problems(folder) == [
        ("shop/entities/gadget.json", "/fields/1/target", "unknown reference target 'thingy'"),
        (E, "/fields/0/type", "unknown type 'txt' (did you mean 'text'?)"),
    ]


# --- the catalog: frozen and versioned by content -----------------------------------------------------

def test_catalog_is_frozen(catalog):
    lead = catalog.entity("lead")
    with pytest.raises(dataclasses.FrozenInstanceError):
        lead.label = {"en": "Prospect"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        lead.field("name").required = False
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.version = "x"
    with pytest.raises(TypeError):
        catalog.entities["lead"] = lead
    with pytest.raises(TypeError):
        lead.label["en"] = "Prospect"
    assert isinstance(lead.fields, tuple) and isinstance(lead.stages, tuple)
    assert lead.label["en"] == "Lead"


def test_catalog_version_is_stable_across_loads():
    first, second = load_catalog("base"), load_catalog("base")
    assert first is not second
    assert first.version == second.version
    assert len(first.version) == 16


def test_catalog_version_ignores_whitespace_and_key_order(tmp_path):
    doc = entity(fields=[text("title", max_length=20), {"name": "qty", "type": "integer", "label": L, "min": 0}])
    pretty = write_pack(tmp_path / "a", entities=[doc])

    def compact_reversed(value):
        def flip(v):
            if isinstance(v, dict):
                return {k: flip(v[k]) for k in reversed(list(v))}
            return [flip(i) for i in v] if isinstance(v, list) else v
        return json.dumps(flip(value), separators=(",", ":"))
    compact = write_pack(tmp_path / "b", entities=[doc], dump=compact_reversed)
    assert (pretty / "entities/thing.json").read_text() != (compact / "entities/thing.json").read_text()
    assert load_catalog([str(pretty)]).version == load_catalog([str(compact)]).version


def test_catalog_version_changes_when_a_label_changes(tmp_path):
    before = write_pack(tmp_path / "a", entities=[entity(fields=[text("title")])])
    after = write_pack(tmp_path / "b", entities=[entity(fields=[text("title", label={"en": "X", "zh": "标题"})])])
    old, new = load_catalog([str(before)]), load_catalog([str(after)])
    assert old.entity("thing").field("title").label["zh"] == "X"
    assert new.entity("thing").field("title").label["zh"] == "标题"
    assert old.version != new.version


# --- texts shown when a rule fires, entry stages, stages only an action may set -----------------------

ZH_ONLY = {"zh": "请先填写金额。"}
FALLBACK = "the message needs an 'en' text (the fallback for other languages)"


@pytest.mark.parametrize("extra, pointer", [
    ({"stages": [{"name": "open", "label": L}, {"name": "won", "label": L, "gate": {"condition": "title != ''",
                                                                                    "message": ZH_ONLY}}]},
     "/stages/1/gate/message"),
    ({"duplicate_rules": [{"name": "same", "fields": ["title"]},
                          {"name": "same_title", "fields": ["title"], "message": ZH_ONLY}]},
     "/duplicate_rules/1/message"),
], ids=["gate", "duplicate-rule"])
def test_a_rule_message_without_an_english_text_is_a_definition_problem(tmp_path, extra, pointer):
    folder = write_pack(tmp_path, entities=[entity(**extra)])
    assert problems(folder) == [(E, pointer, FALLBACK)]


def test_an_overlay_that_leaves_a_gate_message_without_english_is_reported_in_the_overlay(tmp_path):
    stages = [{"name": "open", "label": L},
              {"name": "won", "label": L, "gate": {"condition": "title != ''", "message": {"en": "Title first."}}}]
    write_pack(tmp_path, name="core", entities=[entity(stages=stages)])
    overlay = {"name": "thing", "stages": [{"name": "won", "gate": {"required": ["title"], "message": ZH_ONLY}}]}
    folder = write_pack(tmp_path, name="shop", extends=["core"], entities=[overlay])
    assert problems(folder) == [(E, "/stages/0/gate/message", FALLBACK)]


@pytest.mark.parametrize("stages, extra, expected", [
    ([{"name": "open", "label": L}, {"name": "won", "label": L, "set_by": ["convrt"]}], {},
     [("/stages/1/set_by/0", "unknown action 'convrt' (did you mean 'convert'?)")]),
    ([{"name": "open", "label": L}, {"name": "won", "label": L, "set_by": ["convert"], "entry": True}], {},
     [("/stages/1/entry", "a stage only an action may set cannot be an entry stage")]),
    ([{"name": "open", "label": L, "set_by": ["convert"]}, {"name": "won", "label": L}], {},
     [("/stages/0/set_by", "'open' is the initial stage: new records start there, so an action cannot be "
                           "required to set it")]),
    ([{"name": "open", "label": L}, {"name": "won", "label": L, "set_by": ["convert"]}], {"initial_stage": "won"},
     [("/initial_stage", "'won' is the initial stage: new records start there, so an action cannot be "
                         "required to set it")]),
], ids=["unknown-action", "entry-and-action-only", "first-stage", "initial-stage"])
def test_stage_entry_and_action_declarations_are_checked(tmp_path, stages, extra, expected):
    folder = write_pack(tmp_path, entities=[entity(stages=stages, **extra)])
    assert problems(folder) == [(E, pointer, message) for pointer, message in expected]


def test_entry_stages_are_the_initial_stage_and_those_marked_entry(tmp_path):
    stages = [{"name": "draft", "label": L}, {"name": "open", "label": L, "entry": True},
              {"name": "won", "label": L, "set_by": ["convert"]}]
    folder = write_pack(tmp_path, entities=[entity(stages=stages)])
    thing = load_catalog([str(folder)]).entity("thing")
    assert thing.entry_stages == ("draft", "open")
    assert (thing.stage("won").set_by, thing.stage("open").set_by) == (("convert",), ())
    assert load_catalog([str(folder)]).version != load_catalog([str(write_pack(
        tmp_path / "b", entities=[entity(stages=[dict(s, entry=False) if s["name"] == "open" else s
                                                 for s in stages])]))]).version


def test_the_base_pack_declares_its_entry_and_action_only_stages(catalog):
    lead, contract, deal = catalog.entity("lead"), catalog.entity("contract"), catalog.entity("opportunity")
    assert lead.stage("converted").set_by == ("convert",)
    assert (lead.entry_stages, contract.entry_stages, deal.entry_stages) == (("new",), ("draft", "active"),
                                                                             ("initial_contact",))
