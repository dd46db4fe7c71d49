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


@pytest.fixture
def write_pack(tmp_path, monkeypatch):
    """Writes packs into tmp_path and works from there, so problems name files as `shop/entities/thing.json`.
    Packs of the same name go under different ``root`` folders (``extends`` looks in the working
    directory first, then beside the pack)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_PACKS_PATH", raising=False)

    def write(name: str, *entities: dict, extends: tuple[str, ...] = (), root: str = ".") -> str:
        folder = Path(root) / name
        (folder / "entities").mkdir(parents=True)
        (folder / "pack.json").write_text(json.dumps(
            {"name": name, "version": "1.0.0", "label": {"en": name}, "extends": list(extends)}))
        for doc in entities:
            (folder / "entities" / f"{doc['name']}.json").write_text(json.dumps(doc))
        return str(folder)
    return write


def problems(pack: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_catalog([pack])
    return [str(p) for p in info.value.problems]


def test_a_problem_in_an_overlay_names_the_overlay_file(write_pack):
    edu = write_pack("edu", {"name": "lead", "fields": [
        {"name": "campus", "type": "reference", "label": {"en": "Campus"}, "target": "campus"}]}, extends=("base",))
    assert problems(edu) == ["edu/entities/lead.json: /fields/0/target: unknown reference target 'campus'"]


# --- stages: placing new ones and adding transitions -----------------------------------------------------

L = {"en": "X"}
#: The pipeline overlays below extend: "lost" has no transitions list, so it may go anywhere.
PIPELINE = [{"name": "open", "label": L, "transitions": ["qualified", "lost"]},
            {"name": "qualified", "label": L, "transitions": ["won", "lost"]},
            {"name": "won", "label": L, "transitions": []},
            {"name": "lost", "label": L}]
OVERLAY = "shop/entities/thing.json"


def thing(*stages: dict, base: bool = False) -> dict:
    """The entity document: the defining one (``base``, with a field) or an overlay giving only stages."""
    fields = {"label": L, "fields": [{"name": "title", "type": "text", "label": L}]} if base else {}
    return {"name": "thing", **fields, "stages": list(stages)}


def pipeline(pack: str) -> list[tuple[str, tuple[str, ...] | None]]:
    return [(stage.name, stage.transitions) for stage in load_catalog([pack]).entity("thing").stages]


@pytest.fixture
def overlay(write_pack):
    """A pack `shop` whose `thing` overlays the PIPELINE of pack `core` with the given stages."""
    write_pack("core", thing(*PIPELINE, base=True))
    return lambda *stages: write_pack("shop", thing(*stages), extends=("core",))


def test_overlay_inserts_new_stages_before_and_after_existing_ones(overlay):
    shop = overlay({"name": "demo", "label": L, "after": "open"}, {"name": "proposal", "label": L, "before": "won"},
                   {"name": "on_hold", "label": L})
    assert [name for name, _ in pipeline(shop)] == ["open", "demo", "qualified", "proposal", "won", "lost", "on_hold"]


def test_overlay_may_place_a_stage_next_to_one_it_placed_itself(overlay):
    shop = overlay({"name": "demo", "label": L, "after": "open"}, {"name": "trial", "label": L, "after": "demo"})
    assert [name for name, _ in pipeline(shop)] == ["open", "demo", "trial", "qualified", "won", "lost"]


def test_a_stage_inserted_before_the_first_is_where_new_records_start(overlay):
    shop = overlay({"name": "inbox", "label": L, "before": "open", "transitions": ["open"]})
    assert load_catalog([shop]).entity("thing").first_stage == "inbox"


def test_add_transitions_appends_to_the_merged_list_once(overlay):
    shop = overlay({"name": "open", "add_transitions": ["won", "lost", "open"]},
                   {"name": "won", "add_transitions": ["qualified"]})
    assert pipeline(shop)[:3] == [("open", ("qualified", "lost", "won", "open")), ("qualified", ("won", "lost")),
                                  ("won", ("qualified",))]


def test_add_transitions_may_lead_into_a_stage_the_same_overlay_adds_later_in_the_file(overlay):
    shop = overlay({"name": "open", "add_transitions": ["demo"]},
                   {"name": "demo", "label": L, "after": "open", "transitions": ["qualified"]})
    assert pipeline(shop)[:3] == [("open", ("qualified", "lost", "demo")), ("demo", ("qualified",)),
                                  ("qualified", ("won", "lost"))]


def test_add_transitions_applies_after_the_overlay_replaces_the_list(overlay):
    shop = overlay({"name": "qualified", "transitions": ["won"], "add_transitions": ["open"]})
    assert pipeline(shop)[1] == ("qualified", ("won", "open"))


def test_placed_stages_make_the_same_catalog_as_stages_written_in_order(write_pack):
    write_pack("core", thing(*PIPELINE, base=True), root="placed")
    placed = write_pack("shop", thing({"name": "demo", "label": L, "after": "open", "transitions": ["qualified"]},
                                      {"name": "open", "add_transitions": ["demo"]}), extends=("core",), root="placed")
    written = [dict(PIPELINE[0], transitions=["qualified", "lost", "demo"]),
               {"name": "demo", "label": L, "transitions": ["qualified"]}, *PIPELINE[1:]]
    write_pack("core", thing(*written, base=True), root="in_order")
    in_order = write_pack("shop", {"name": "thing"}, extends=("core",), root="in_order")
    assert load_catalog([placed]).version == load_catalog([in_order]).version


def test_three_packs_in_a_chain_compose_their_placements(write_pack):
    write_pack("core", thing(*PIPELINE, base=True))
    mid = write_pack("mid", thing({"name": "x", "label": L, "after": "open", "transitions": ["qualified"]},
                                  {"name": "open", "add_transitions": ["x"]}), extends=("core",))
    top = write_pack("top", thing({"name": "y", "label": L, "before": "x", "transitions": ["x"]},
                                  {"name": "x", "add_transitions": ["y"]}), extends=("mid",))
    assert pipeline(mid) == [("open", ("qualified", "lost", "x")), ("x", ("qualified",)),
                             ("qualified", ("won", "lost")), ("won", ()), ("lost", None)]
    assert pipeline(top) == [("open", ("qualified", "lost", "x")), ("y", ("x",)), ("x", ("qualified", "y")),
                             ("qualified", ("won", "lost")), ("won", ()), ("lost", None)]


def test_a_mistake_in_the_last_pack_of_a_chain_names_that_pack(write_pack):
    write_pack("core", thing(*PIPELINE, base=True))
    write_pack("mid", thing({"name": "demo", "label": L, "after": "open"}), extends=("core",))
    top = write_pack("top", thing({"name": "trial", "label": L, "before": "dmeo"}), extends=("mid",))
    assert problems(top) == [("top/entities/thing.json: /stages/0/before: unknown stage 'dmeo' "
                              "(did you mean 'demo'?)")]


def test_a_defining_document_may_place_and_extend_its_own_stages(write_pack):
    core = write_pack("core", thing({"name": "won", "label": L, "transitions": []},
                                    {"name": "open", "label": L, "before": "won", "transitions": [],
                                     "add_transitions": ["won"]}, base=True))
    assert pipeline(core) == [("open", ("won",)), ("won", ())]


def test_a_new_stage_given_twice_is_reported_not_merged_into_one(write_pack, overlay):
    demo = {"name": "demo", "label": L, "after": "open"}
    assert problems(overlay(demo, dict(demo, after="won"))) == [
        f"{OVERLAY}: /stages/{i}/name: stage 'demo' is defined twice" for i in (0, 1)]
    twice = write_pack("twice", thing(*PIPELINE, PIPELINE[0], base=True))
    assert problems(twice) == [f"twice/entities/thing.json: /stages/{i}/name: stage 'open' is defined twice"
                               for i in (0, 4)]


@pytest.mark.parametrize("stages, expected", [
    ([{"name": "demo", "label": L, "before": "qualifed"}],
     ["/stages/0/before: unknown stage 'qualifed' (did you mean 'qualified'?)"]),
    ([{"name": "demo", "label": L, "after": "archive"}], ["/stages/0/after: unknown stage 'archive'"]),
    ([{"name": "won", "label": {"zh": "赢单"}}, {"name": "demo", "label": L, "before": "won", "after": "open"}],
     ["/stages/1: 'demo' cannot go both before 'won' and after 'open': give one"]),
    ([{"name": "won", "after": "open"}],
     [("/stages/0/after: stage 'won' exists already: moving a stage is not supported "
       "(before and after only place a new stage)")]),
    ([{"name": "demo", "label": L}, {"name": "open", "add_transitions": ["demo", "wno"]}],
     ["/stages/1/add_transitions/1: unknown stage 'wno' (did you mean 'won'?)"]),
    ([{"name": "lost", "add_transitions": ["open"]}],
     ["/stages/0/add_transitions: 'lost' allows every transition already; add_transitions has no effect"]),
    ([{"name": "demo", "label": L, "add_transitions": ["open"]}],
     ["/stages/0/add_transitions: 'demo' allows every transition already; add_transitions has no effect"]),
], ids=["unknown-before", "unknown-after", "before-and-after", "moving-existing", "unknown-added-transition",
        "adding-to-any", "adding-to-new-any"])
def test_stage_placement_mistakes_name_the_overlay_file_and_pointer(overlay, stages, expected):
    assert problems(overlay(*stages)) == [f"{OVERLAY}: {problem}" for problem in expected]


def test_every_placement_mistake_of_one_overlay_is_reported_at_once(overlay):
    shop = overlay({"name": "open", "before": "won", "add_transitions": ["qualifid"]},
                   {"name": "demo", "label": L, "after": "opne", "transitions": ["nowhere"]})
    assert problems(shop) == [
        (f"{OVERLAY}: /stages/0/before: stage 'open' exists already: moving a stage is not supported "
         "(before and after only place a new stage)"),
        f"{OVERLAY}: /stages/1/after: unknown stage 'opne' (did you mean 'open'?)",
        f"{OVERLAY}: /stages/0/add_transitions/0: unknown stage 'qualifid' (did you mean 'qualified'?)",
        f"{OVERLAY}: /stages/1/transitions/0: unknown stage 'nowhere'"]


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
