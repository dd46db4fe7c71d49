"""A pack that extends base overlays it: fields, stages and choices merge by name; labels per locale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crm_platform.engine import compile_runtime, make_engine
from crm_platform.engine.errors import Forbidden, RecordInvalid
from crm_platform.installation import Installation, Settings
from crm_platform.metadata import DefinitionError, load_catalog

EDUCATION = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "education"


@pytest.fixture(scope="module")
def education():
    return load_catalog([str(EDUCATION)])


def test_base_is_found_as_a_builtin_pack(education, catalog):
    assert education.packs[0] == catalog.packs[0]
    assert [(p.name, p.version, p.extends) for p in education.packs[1:]] == [("education", "0.1.0", ("base",))]
    assert education.version != catalog.version


def test_overlay_keeps_base_fields_in_order_and_appends_new_ones(education, catalog):
    base_names = [f.name for f in catalog.entity("lead").fields]
    assert [f.name for f in education.entity("lead").fields] == base_names + ["course_interest"]
    interest = education.entity("lead").field("course_interest")
    assert (interest.type, dict(interest.label)) == ("select", {"en": "Course of interest", "zh": "意向课程"})
    assert [c.value for c in interest.choices] == ["math", "english"]
    # every untouched base field is the very same definition
    for name in base_names:
        if name != "source":
            assert education.entity("lead").field(name) == catalog.entity("lead").field(name)


def test_overlay_label_replaces_the_given_locale_and_keeps_the_rest(education, catalog):
    lead, base = education.entity("lead"), catalog.entity("lead")
    assert dict(lead.label) == {"en": "Lead", "zh": "生源线索"}
    assert lead.plural_label == base.plural_label
    assert lead.description == base.description
    assert (lead.owned, lead.pooled, lead.title, lead.search_fields) == (base.owned, base.pooled, base.title,
                                                                         base.search_fields)


def test_overlay_may_override_only_the_zh_label(tmp_path):
    pack = tmp_path / "education"
    shutil.copytree(EDUCATION, pack)
    lead = json.loads((pack / "entities/lead.json").read_text())
    lead["label"] = {"zh": "生源线索"}
    (pack / "entities/lead.json").write_text(json.dumps(lead, ensure_ascii=False))
    assert dict(load_catalog([str(pack)]).entity("lead").label) == {"en": "Lead", "zh": "生源线索"}


def test_overlay_appends_a_stage_and_keeps_base_stages(education, catalog):
    stages, base = education.entity("lead").stages, catalog.entity("lead").stages
    assert stages[:-1] == base
    trial = stages[-1]
    assert (trial.name, dict(trial.label), trial.probability, trial.category, trial.transitions) == \
        ("trial_class", {"en": "Trial class", "zh": "试听课"}, 60, "open", None)


def test_overlay_merges_choices_by_value(education, catalog):
    source, base = education.entity("lead").field("source"), catalog.entity("lead").field("source")
    assert source.choices[:-1] == base.choices
    assert (source.choices[-1].value, dict(source.choices[-1].label)) == \
        ("school_fair", {"en": "School fair", "zh": "校园招生会"})
    assert (source.type, source.label, source.indexed) == (base.type, base.label, base.indexed)


def test_overlay_adds_a_new_entity(education, catalog):
    assert "course" not in catalog.entities
    course = education.entity("course")
    assert [(f.name, f.type, f.required) for f in course.fields] == [("name", "text", True),
                                                                     ("hours", "integer", False)]
    assert course.source.endswith("education/entities/course.json")
    assert list(education.entities)[:len(catalog.entities)] == list(catalog.entities)


def test_overlay_extends_a_role_without_losing_base_grants(education, catalog):
    rep, base = education.roles["rep"], catalog.roles["rep"]
    assert dict(rep.grant("course").actions) == {"read": "all"}
    for name, grant in base.entities.items():
        assert rep.entities[name] == grant
    assert rep.label == base.label and rep.level == base.level and rep.sharing == base.sharing


def test_loading_an_overlay_leaves_the_base_catalog_untouched(education):
    base = load_catalog("base")
    assert not base.entity("lead").has_field("course_interest")
    assert "school_fair" not in base.entity("lead").field("source").choice_values()


def test_a_problem_in_an_overlay_names_the_overlay_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "edu/entities").mkdir(parents=True)
    (tmp_path / "edu/pack.json").write_text(json.dumps(
        {"name": "edu", "version": "1.0.0", "label": {"en": "Edu"}, "extends": ["base"]}))
    (tmp_path / "edu/entities/lead.json").write_text(json.dumps({"name": "lead", "fields": [
        {"name": "campus", "type": "reference", "label": {"en": "Campus"}, "target": "campus"}]}))
    with pytest.raises(DefinitionError) as info:
        load_catalog(["edu"])
    assert [str(p) for p in info.value.problems] == ["edu/entities/lead.json: /fields/0/target: "
                                                     "unknown reference target 'campus'"]


@pytest.fixture
def edu_installation(education, tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    inst = Installation(Settings(database_url=url), make_engine(url), compile_runtime(education))
    inst.migrate()
    inst.accounts.create_team("Campus")
    user_id = inst.accounts.create_user("teacher", "teacher-password", "rep", "Campus")
    yield inst, inst.accounts.actor(user_id)
    inst.db.dispose()


def test_record_with_overlay_field_and_stage_can_be_created(edu_installation):
    inst, actor = edu_installation
    records = inst.records(actor)
    lead = records.create("lead", {"name": "Xiao Ming", "course_interest": "math", "source": "school_fair",
                                   "stage": "trial_class"})
    stored = records.get("lead", lead["id"])
    assert (stored["course_interest"], stored["source"], stored["stage"], stored["owner"]) == \
        ("math", "school_fair", "trial_class", actor.id)
    with pytest.raises(Forbidden):  # the overlay's rep role may only read courses
        records.create("course", {"name": "Math Olympiad", "hours": 40})
    course = inst.records(None).create("course", {"name": "Math Olympiad", "hours": 40})
    assert records.get("course", course["id"])["hours"] == 40


def test_overlay_field_choices_are_enforced(edu_installation):
    inst, actor = edu_installation
    with pytest.raises(RecordInvalid) as info:
        inst.records(actor).create("lead", {"name": "Xiao Hong", "course_interest": "piano"})
    assert [m.key for m in info.value.fields["course_interest"]] == ["choice"]
    assert list(info.value.fields) == ["course_interest"]
