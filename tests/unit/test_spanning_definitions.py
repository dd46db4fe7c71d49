"""Definitions that span records — lookups, paths, fetch_from, rollups, master-detail, formulas over
formulas, validation rules, stage roles and probability — each mistake reported as
`file: /json/pointer: message`, where it was written.

Each test writes a small pack ``shop`` into ``tmp_path`` (and works from there, so files are named
short and exact): a region, an owned account in a region, an order of an account, and order lines,
details of their order. A case adds the fields or keys that make one mistake.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm_platform.engine import compile_runtime
from crm_platform.metadata import DefinitionError, load_catalog
from crm_platform.metadata.validate import validate_paths

L = {"en": "X"}
ORDER, LINE, ACCOUNT, REGION = (f"shop/entities/{name}.json" for name in ("order", "line", "account", "region"))
#: The index the first field a case adds to each entity gets.
NEW = {"region": 2, "account": 5, "order": 4, "line": 4}


def field(name: str, kind: str = "text", **options) -> dict:
    return {"name": name, "type": kind, "label": L, **options}


def shop_entities() -> dict[str, dict]:
    """The pack every case starts from (fresh documents each time)."""
    def entity(name: str, *fields: dict, **keys) -> dict:
        return {"name": name, "label": L, "fields": list(fields), **keys}
    return {e["name"]: e for e in [
        entity("region", field("name"), field("manager", "user")),
        entity("account", field("name"), field("region", "reference", target="region"),
               field("tier", "select", choices=[{"value": "gold"}, {"value": "silver"}]),
               field("credit_limit", "currency", precision=2), field("since", "date"), owned=True),
        entity("order", field("account", "reference", target="account"), field("amount", "currency"),
               field("placed_on", "date"), field("note")),
        entity("line", field("order", "reference", target="order", detail=True), field("qty", "integer"),
               field("price", "currency"), field("label")),
    ]}


def on(entity: str, *fields: dict, **keys):
    """A change to the pack: append ``fields`` to ``entity`` and set its ``keys``."""
    def change(entities: dict[str, dict]) -> None:
        entities[entity]["fields"].extend(fields)
        entities[entity].update(keys)
    return change


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """Writes the pack with the given changes (and role names) and returns its folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_PACKS_PATH", raising=False)

    def write(*changes, roles: tuple[str, ...] = ()) -> str:
        entities = shop_entities()
        for change in changes:
            change(entities)
        folder = Path("shop")
        (folder / "entities").mkdir(parents=True)
        (folder / "roles").mkdir()
        (folder / "pack.json").write_text(json.dumps({"name": "shop", "version": "1.0.0", "label": L}))
        for doc in entities.values():
            (folder / "entities" / f"{doc['name']}.json").write_text(json.dumps(doc))
        for role in roles:
            (folder / "roles" / f"{role}.json").write_text(json.dumps({"name": role, "label": L}))
        return str(folder)
    return write


def problems(pack: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_catalog([pack])
    return [str(p) for p in info.value.problems]


def check(shop, changes, expected, roles=()):
    assert problems(shop(*changes, roles=roles)) == expected


def test_the_starting_pack_loads(shop):
    assert [f.name for f in load_catalog([shop()]).entity("line").fields] == ["order", "qty", "price", "label"]


# --- paths and lookups --------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, expected", [
    ([on("order", field("limit", "currency", lookup="account.credit_limt"))],
     [f"{ORDER}: /fields/4/lookup: unknown path 'account.credit_limt' (did you mean 'account.credit_limit'?)"]),
    ([on("line", field("limit", "currency", lookup="order.acount.credit_limit"))],
     [(f"{LINE}: /fields/4/lookup: unknown path 'order.acount.credit_limit': 'acount' is not a field of 'order' "
      "(did you mean 'order.account.credit_limit'?)")]),
    ([on("order", field("limit", "currency", fetch_from="account.credit_limt"))],
     [f"{ORDER}: /fields/4/fetch_from: unknown path 'account.credit_limt' (did you mean 'account.credit_limit'?)"]),
    ([on("order", field("headroom", "formula", expression="account.credit_limt - amount"))],
     [(f"{ORDER}: /fields/4/expression: expression 'account.credit_limt - amount': unknown path "
      "'account.credit_limt' (did you mean 'account.credit_limit'?)")]),
    ([on("order", validation_rules=[{"name": "within_limit", "condition": "amount <= account.credit_limt",
                                     "message": L, "fields": ["amount"]}])],
     [(f"{ORDER}: /validation_rules/0/condition: expression 'amount <= account.credit_limt': unknown path "
      "'account.credit_limt' (did you mean 'account.credit_limit'?)")]),
    ([on("order", field("placed_after", "date", required_if="account.snice < placed_on"))],
     [(f"{ORDER}: /fields/4/required_if: expression 'account.snice < placed_on': unknown path 'account.snice' "
      "(did you mean 'account.since'?)")]),
], ids=["lookup", "lookup-middle-hop", "fetch_from", "formula", "validation-rule", "required_if"])
def test_an_unknown_path_is_reported_with_the_nearest_path(shop, changes, expected):
    check(shop, changes, expected)


def test_a_path_through_a_field_that_is_not_a_reference_names_that_field(shop):
    check(shop, [on("line", field("x", "text", lookup="order.note.name"))],
          [f"{LINE}: /fields/4/lookup: 'order.note.name' cannot be read: 'order.note' is a text field, not a reference"])


def test_a_path_follows_stored_references_not_a_lookup_of_one(shop):
    check(shop, [on("line", field("account", "reference", lookup="order.account"),
                    field("limit", "currency", lookup="account.credit_limit"))],
          [(f"{LINE}: /fields/5/lookup: 'account.credit_limit' cannot be read: 'account' is a lookup (of "
            "'order.account'), and a path follows only stored references: read 'order.account.credit_limit' instead")])


def test_a_lookup_longer_than_three_hops_is_refused_with_the_limit(shop):
    check(shop, [on("region", field("parent", "reference", target="region")),
                 on("line", field("x", "text", lookup="order.account.region.parent.name"))],
          [(f"{LINE}: /fields/4/lookup: 'order.account.region.parent.name' follows 4 references; "
           "a path follows at most 3")])


def test_an_expression_path_longer_than_three_hops_is_unknown(shop):
    check(shop, [on("region", field("parent", "reference", target="region")),
                 on("line", field("x", "formula", expression="order.account.region.parent.name", result_type="text"))],
          [(f"{LINE}: /fields/4/expression: expression 'order.account.region.parent.name': unknown path "
           "'order.account.region.parent.name' (did you mean 'order.account.region.parent'?)")])


def test_a_lookup_declares_the_type_of_the_value_it_reads(shop):
    check(shop, [on("order", field("tier", "text", lookup="account.tier"),
                    field("limit", "decimal", lookup="account.credit_limit"))],
          [f"{ORDER}: /fields/4/type: 'account.tier' is a select field: declare this lookup with type 'select'",
           f"{ORDER}: /fields/5/type: 'account.credit_limit' is a currency field: declare this lookup with type 'currency'"])


def test_a_lookup_takes_choices_precision_and_target_from_its_source(shop):
    catalog = load_catalog([shop(on("order", field("tier", "select", lookup="account.tier"),
                                    field("limit", "currency", lookup="account.credit_limit"),
                                    field("region", "reference", lookup="account.region")))])
    order = catalog.entity("order")
    assert [c.value for c in order.field("tier").choices] == ["gold", "silver"]
    assert (order.field("limit").precision, order.field("region").target) == (2, "region")
    assert all(order.field(name).readonly for name in ("tier", "limit", "region"))


def test_a_lookup_cannot_be_written_so_it_has_no_write_options(shop):
    check(shop, [on("order", field("tier", "select", lookup="account.tier", required=True, default="gold"),
                    field("region", "reference", lookup="account.region", on_delete="cascade"))],
          [f"{ORDER}: /fields/4/required: a lookup shows the value of 'account.tier', so it cannot have 'required'",
           f"{ORDER}: /fields/4/default: a lookup shows the value of 'account.tier', so it cannot have 'default'",
           f"{ORDER}: /fields/5/on_delete: a lookup shows the value of 'account.region', so it cannot have 'on_delete'"])


@pytest.mark.parametrize("order_fields, expected", [
    ([field("limit", "currency", lookup="account.credit_limit")],
     ("'order.limit' is a lookup (of 'account.credit_limit'), and a path cannot end at a lookup: "
     "read 'order.account.credit_limit' instead")),
    ([field("headroom", "formula", expression="account.credit_limit - amount", result_type="currency")],
     ("'order.headroom' is a formula that reads other records, and a path can end only at a formula over its "
     "own record's fields")),
    ([field("limit", "currency", lookup="account.credit_limit"),
      field("headroom", "formula", expression="limit - amount", result_type="currency")],
     ("'order.headroom' is a formula that reads other records, and a path can end only at a formula over its "
     "own record's fields")),
], ids=["at-a-lookup", "at-a-formula-reading-a-path", "at-a-formula-reading-a-lookup"])
def test_a_path_ends_at_a_value_of_the_record_reached(shop, order_fields, expected):
    name = order_fields[-1]["name"]
    check(shop, [on("order", *order_fields), on("line", field("x", "currency", lookup=f"order.{name}"))],
          [f"{LINE}: /fields/4/lookup: {expected}"])


def test_a_path_may_end_at_a_formula_over_its_own_record_and_at_a_system_field(shop):
    catalog = load_catalog([shop(on("order", field("doubled", "formula", expression="amount * 2", result_type="currency")),
                                 on("line", field("doubled", "currency", lookup="order.doubled"),
                                    field("account_owner", "user", lookup="order.account.owner")))])
    assert [(f.name, f.type, f.lookup) for f in catalog.entity("line").fields[4:]] == [
        ("doubled", "currency", "order.doubled"), ("account_owner", "user", "order.account.owner")]


def test_a_select_lookup_with_an_unknown_path_is_reported_once(shop):
    check(shop, [on("order", field("tier", "select", lookup="account.teir"))],
          [f"{ORDER}: /fields/4/lookup: unknown path 'account.teir' (did you mean 'account.tier'?)"])


# --- fetch_from ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fetched, expected", [
    (field("x", "date", fetch_from="order.amount"), "'order.amount' is a currency field; it cannot fill a date field"),
    (field("x", "text", fetch_from="order.account.tier"),
     "'order.account.tier' is a select field; it cannot fill a text field"),
    (field("x", "integer", fetch_from="order.amount"),
     "'order.amount' is a currency field, whose values may have a fraction; it cannot fill an integer field"),
    (field("x", "reference", target="region", fetch_from="order.account"),
     "'order.account' references 'account'; it cannot fill a reference to 'region'"),
    (field("x", "select", choices=[{"value": "gold"}, {"value": "bronze"}], fetch_from="order.account.tier"),
     "'order.account.tier' may hold 'silver', which is not a choice of this field"),
    (field("x", "formula", expression="qty * 2", fetch_from="order.amount"),
     "a formula field computes its own value; it cannot fetch one"),
], ids=["currency-into-date", "select-into-text", "fraction-into-integer", "other-target", "missing-choice",
        "into-a-formula"])
def test_fetch_from_copies_only_values_the_field_can_hold(shop, fetched, expected):
    check(shop, [on("line", fetched)], [f"{LINE}: /fields/4/fetch_from: {expected}"])


def test_fetch_from_may_widen_a_number_and_copy_into_a_select_with_every_choice(shop):
    catalog = load_catalog([shop(on("line", field("list_price", "decimal", fetch_from="order.amount"),
                                    field("tier", "select", fetch_from="order.account.tier",
                                          choices=[{"value": "silver"}, {"value": "gold"}, {"value": "none"}])))])
    assert [f.fetch_from for f in catalog.entity("line").fields[4:]] == ["order.amount", "order.account.tier"]


# --- formulas over formulas ---------------------------------------------------------------------------------

@pytest.mark.parametrize("formulas, expected", [
    ({"a": "b + 1", "b": "a + 1"}, "/fields/4/expression: formulas read each other in a cycle: a → b → a"),
    ({"a": "b + 1", "b": "c * 2", "c": "amount - a"},
     "/fields/4/expression: formulas read each other in a cycle: a → b → c → a"),
], ids=["two", "three"])
def test_a_formula_cycle_is_refused_naming_the_cycle(shop, formulas, expected):
    check(shop, [on("order", *(field(name, "formula", expression=source) for name, source in formulas.items()))],
          [f"{ORDER}: {expected}"])


def test_a_formula_reading_itself_is_refused_as_a_cycle(shop):
    check(shop, [on("order", field("a", "formula", expression="a + 1"))],
          [f"{ORDER}: /fields/4/expression: formulas read each other in a cycle: a → a"])


def test_formulas_read_formulas_in_any_order(shop):
    catalog = load_catalog([shop(on("order", field("total", "formula", expression="net + 1"),
                                    field("net", "formula", expression="amount * 2")))])
    assert catalog.entity("order").field("total").expression.names == {"net"}


# --- rollups ------------------------------------------------------------------------------------------------

def rollup(name: str, kind: str, **spec) -> dict:
    """An order field summarising its lines."""
    return field(name, kind, rollup={"entity": "line", "via": "order", **spec})


@pytest.mark.parametrize("added, expected", [
    (on("account", field("lines", "integer", rollup={"entity": "line", "via": "order", "function": "count"})),
     (f"{ACCOUNT}: /fields/5/rollup/via: 'line.order' is not a reference to 'account': a rollup summarises the "
     "records whose reference points at this one ('line' has no reference to 'account')")),
    (on("order", rollup("n", "integer", function="count", via="qty")),
     (f"{ORDER}: /fields/4/rollup/via: 'line.qty' is not a reference to 'order': a rollup summarises the records "
     "whose reference points at this one (its references to 'order': order)")),
    (on("order", rollup("n", "integer", function="count", via="ordr")),
     f"{ORDER}: /fields/4/rollup/via: unknown field 'ordr' of 'line' (did you mean 'order'?)"),
    (on("order", field("n", "integer", rollup={"entity": "lines", "via": "order", "function": "count"})),
     f"{ORDER}: /fields/4/rollup/entity: unknown entity 'lines' (did you mean 'line'?)"),
    (on("order", rollup("n", "currency", function="sum", field="prise")),
     f"{ORDER}: /fields/4/rollup/field: unknown field 'prise' of 'line' (did you mean 'price'?)"),
], ids=["not-a-child", "via-not-a-reference", "unknown-via", "unknown-entity", "unknown-field"])
def test_a_rollup_summarises_records_that_reference_this_one(shop, added, expected):
    check(shop, [added], [expected])


def test_a_rollup_follows_a_stored_reference_not_a_lookup(shop):
    check(shop, [on("line", field("account", "reference", lookup="order.account")),
                 on("account", field("lines", "integer", rollup={"entity": "line", "via": "account", "function": "count"}))],
          [(f"{ACCOUNT}: /fields/5/rollup/via: 'line.account' is a lookup, not a stored reference: a rollup summarises "
           "the records whose reference points at this one ('line' has no reference to 'account')")])


@pytest.mark.parametrize("summary, expected", [
    (rollup("n", "currency", function="sum", field="label"),
     "/fields/4/rollup/field: sum needs a number field, and 'line.label' is a text field"),
    (rollup("n", "integer", function="count", field="qty"), "/fields/4/rollup/field: count counts records; it takes no field"),
    (rollup("n", "currency", function="sum"), "/fields/4/rollup/field: sum needs the field it summarises"),
    (rollup("n", "currency", function="count"),
     "/fields/4/type: a count is an integer: declare the rollup field with type 'integer'"),
    (rollup("n", "integer", function="avg", field="qty"),
     ("/fields/4/type: the avg of 'line.qty' is a number that may have a fraction: declare the rollup field with "
     "type 'decimal', 'currency' or 'percent', not 'integer'")),
    (rollup("n", "integer", function="sum", field="price"),
     ("/fields/4/type: the sum of 'line.price' is a number that may have a fraction: declare the rollup field with "
     "type 'decimal', 'currency' or 'percent', not 'integer'")),
    (rollup("n", "date", function="max", field="qty"),
     ("/fields/4/type: the max of 'line.qty' is a whole number: declare the rollup field with type 'integer', "
     "'decimal', 'currency' or 'percent', not 'date'")),
], ids=["sum-of-text", "count-with-a-field", "sum-without-a-field", "count-into-currency", "avg-into-integer",
        "sum-of-currency-into-integer", "max-of-integer-into-date"])
def test_a_rollup_function_fits_its_field_and_its_type_holds_the_result(shop, summary, expected):
    check(shop, [on("order", summary)], [f"{ORDER}: {expected}"])


def test_the_max_of_a_date_is_a_date(shop):
    check(shop, [on("line", field("shipped_on", "date")), on("order", rollup("n", "integer", function="max", field="shipped_on"))],
          [(f"{ORDER}: /fields/4/type: the max of 'line.shipped_on' is a date: declare the rollup field with type "
           "'date', not 'integer'")])


def test_a_rollup_summarises_values_of_the_child_itself(shop):
    check(shop, [on("line", field("limit", "currency", lookup="order.account.credit_limit"),
                    field("room", "formula", expression="limit - price", result_type="currency")),
                 on("order", rollup("a", "currency", function="sum", field="limit"),
                    rollup("b", "currency", function="sum", field="room"))],
          [f"{ORDER}: /fields/{NEW['order'] + i}/rollup/field: 'line.{name}' reads other records; a rollup summarises "
           "a value of the child record itself (a stored field, or a formula over its fields)"
           for i, name in enumerate(["limit", "room"])])


def test_a_rollup_is_computed_so_it_has_no_write_options(shop):
    check(shop, [on("order", dict(rollup("n", "integer", function="count"), required=True, default=0))],
          [f"{ORDER}: /fields/4/required: a rollup is computed from the 'line' records, so it cannot have 'required'",
           f"{ORDER}: /fields/4/default: a rollup is computed from the 'line' records, so it cannot have 'default'"])


@pytest.mark.parametrize("where, expected", [
    ("qtty > 1", "expression 'qtty > 1': unknown name 'qtty' (did you mean 'qty'?)"),
    ("label == user.username", "a rollup condition reads only the child record (not old. or user.)"),
    ("qty != old.qty", "a rollup condition reads only the child record (not old. or user.)"),
], ids=["unknown-field", "user", "old"])
def test_a_rollup_condition_reads_the_child_record(shop, where, expected):
    check(shop, [on("order", rollup("n", "integer", function="count", where=where))],
          [f"{ORDER}: /fields/4/rollup/where: {expected}"])


@pytest.mark.parametrize("where, expected", [
    ("len(label) > 3", "only stored fields can be compared in the database, not 'len(label)'"),
    ("qty > price", ("'qty > price': a field can be compared with a literal or user.<attribute> in the database, "
                    "not with another field or a calculation")),
], ids=["function", "two-fields"])
def test_a_rollup_condition_the_database_cannot_run_is_refused_when_the_runtime_is_compiled(shop, where, expected):
    catalog = load_catalog([shop(on("order", rollup("n", "integer", function="count", where=where)))])
    with pytest.raises(DefinitionError) as info:
        compile_runtime(catalog)
    assert [str(p) for p in info.value.problems] == [f"{ORDER}: /fields/4/rollup/where: {expected}"]


# --- master-detail and on_delete ----------------------------------------------------------------------------

def test_a_detail_entity_is_not_owned(shop):
    check(shop, [on("line", owned=True)],
          [f"{LINE}: /fields/0/detail: a detail follows its parent's owner and team: remove 'owned' from the entity"])


def test_a_detail_has_one_parent(shop):
    check(shop, [on("line", field("account", "reference", target="account", detail=True))],
          [f"{LINE}: /fields/4/detail: 'line' is a detail of 'order' already (field 'order'): a detail has one parent"])


def test_master_detail_references_may_not_form_a_cycle(shop):
    check(shop, [on("order", field("line", "reference", target="line", detail=True)),
                 on("region", field("parent", "reference", target="region", detail=True))],
          [f"{LINE}: /fields/0/detail: master-detail references form a cycle: line → order → line",
           f"{ORDER}: /fields/4/detail: master-detail references form a cycle: order → line → order",
           f"{REGION}: /fields/2/detail: master-detail references form a cycle: region → region"])


def test_detail_and_on_delete_belong_to_references(shop):
    check(shop, [on("order", field("code", detail=True, on_delete="cascade"))],
          [f"{ORDER}: /fields/4/detail: only reference fields have 'detail'",
           f"{ORDER}: /fields/4/on_delete: only reference fields have 'on_delete'"])


@pytest.mark.parametrize("reference, expected", [
    (field("buyer", "reference", target="account", required=True, on_delete="set_null"),
     "a required reference cannot be cleared: on_delete set_null needs required false"),
    (field("zone", "reference", target="region", detail=True, on_delete="set_null"),
     "a detail cannot outlive its parent: on_delete must be cascade or restrict"),
], ids=["required", "detail"])
def test_set_null_needs_a_reference_that_may_be_blank(shop, reference, expected):
    check(shop, [on("order", reference)], [f"{ORDER}: /fields/4/on_delete: {expected}"])


def test_a_detail_reference_is_required_and_cascades_and_its_parent_lists_it(shop):
    catalog = load_catalog([shop()])
    parent = catalog.entity("line").field("order")
    assert (parent.detail, parent.required, parent.on_delete) == (True, True, "cascade")
    assert [(r.entity, r.field) for r in catalog.entity("order").forms["default"].related] == [("line", "order")]


# --- validation rules ---------------------------------------------------------------------------------------

def rules(*items: dict):
    return on("order", validation_rules=list(items))


def rule(name: str = "positive", condition: str = "amount > 0", message: dict = L, fields=("amount",)) -> dict:
    return {"name": name, "condition": condition, "message": message, "fields": list(fields)}


@pytest.mark.parametrize("items, expected", [
    ([rule(fields=["amout"])], ["/validation_rules/0/fields/0: unknown field 'amout' (did you mean 'amount'?)"]),
    ([rule(condition="amount >")], [("/validation_rules/0/condition: expression 'amount >': invalid syntax at the end: "
                                    "invalid syntax")]),
    ([rule(condition="amout > 0")], [("/validation_rules/0/condition: expression 'amout > 0': unknown name 'amout' "
                                     "(did you mean 'amount'?)")]),
    ([rule(message={"zh": "金额必须为正"})], [("/validation_rules/0/message: the message needs an 'en' text "
                                          "(the fallback for other languages)")]),
    ([rule(), rule(condition="amount < 1000000")], [("/validation_rules/1/name: validation rule 'positive' is "
                                                    "defined twice")]),
], ids=["unknown-field", "bad-condition", "unknown-name", "no-en-message", "duplicate-name"])
def test_validation_rule_mistakes(shop, items, expected):
    check(shop, [rules(*items)], [f"{ORDER}: {problem}" for problem in expected])


def test_a_validation_rule_may_read_paths_and_old_and_user(shop):
    catalog = load_catalog([shop(rules(rule("within_limit", "amount <= account.credit_limit"),
                                       rule("no_cut", "old.amount is None or amount >= old.amount or user.role == 'admin'")))])
    assert [(r.name, sorted(r.condition.names)) for r in catalog.entity("order").validation_rules] == [
        ("within_limit", ["account.credit_limit", "amount"]), ("no_cut", ["amount"])]


# --- stages: roles and probability --------------------------------------------------------------------------

STAGES = [{"name": "open", "label": L, "probability": 10},
          {"name": "approved", "label": L, "probability": 100, "roles": ["managr"]}]


def test_a_stage_role_must_exist(shop):
    check(shop, [on("order", stages=STAGES)],
          [f"{ORDER}: /stages/1/roles/0: unknown role 'managr' (did you mean 'manager'?)"], roles=("manager", "rep"))


@pytest.mark.parametrize("changes, expected", [
    ([on("order", field("chance"), stages=STAGES[:1], probability_field="chance")],
     "'chance' is not a number field of this entity"),
    ([on("order", stages=STAGES[:1], probability_field="chanse")], "'chanse' is not a number field of this entity"),
    ([on("order", field("chance", "percent"), probability_field="chance")],
     "the entity has no stages to take a probability from"),
], ids=["text", "unknown", "no-stages"])
def test_probability_field_is_a_number_field_of_a_staged_entity(shop, changes, expected):
    check(shop, changes, [f"{ORDER}: /probability_field: {expected}"])


# --- reporting: all at once, and where an overlay wrote it --------------------------------------------------

def test_definitions_validate_reports_every_mistake_at_once(shop):
    found, checked = validate_paths([Path(shop(
        on("order", field("tier", "text", lookup="account.tier"), rollup("n", "currency", function="count"),
           validation_rules=[rule(fields=["amout"])]),
        on("line", field("cost", "currency", fetch_from="order.amout")),
    ))])
    assert (checked, [str(p) for p in found]) == (1, [
        f"{LINE}: /fields/4/fetch_from: unknown path 'order.amout' (did you mean 'order.amount'?)",
        f"{ORDER}: /fields/4/type: 'account.tier' is a select field: declare this lookup with type 'select'",
        f"{ORDER}: /fields/5/type: a count is an integer: declare the rollup field with type 'integer'",
        f"{ORDER}: /validation_rules/0/fields/0: unknown field 'amout' (did you mean 'amount'?)"])


@pytest.fixture
def edu(tmp_path, monkeypatch):
    """Writes a pack ``edu`` extending base with the given entity overlays; returns its folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_PACKS_PATH", raising=False)

    def write(*overlays: dict) -> str:
        (tmp_path / "edu" / "entities").mkdir(parents=True)
        (tmp_path / "edu" / "pack.json").write_text(json.dumps(
            {"name": "edu", "version": "1.0.0", "label": L, "extends": ["base"]}))
        for doc in overlays:
            (tmp_path / "edu" / "entities" / f"{doc['name']}.json").write_text(json.dumps(doc))
        return "edu"
    return write


def test_mistakes_in_an_overlay_name_the_overlay_file_and_pointer(edu):
    assert problems(edu(
        {"name": "contract", "fields": [field("industry", "select", lookup="account.industry"),
                                        field("limit", "currency", lookup="acount.credit_limit"),
                                        field("payments", "integer", rollup={"entity": "payment", "via": "contrat",
                                                                             "function": "count"})]},
        {"name": "payment", "fields": [field("opportunity", "reference", target="opportunity", detail=True)]},
        {"name": "opportunity", "stages": [{"name": "won", "roles": ["managr"]}]},
    )) == [
        ("edu/entities/contract.json: /fields/1/lookup: unknown path 'acount.credit_limit': 'acount' is not a field "
        "of 'contract' (did you mean 'account.credit_limit'?)"),
        "edu/entities/contract.json: /fields/2/rollup/via: unknown field 'contrat' of 'payment' (did you mean 'contract'?)",
        "edu/entities/opportunity.json: /stages/0/roles/0: unknown role 'managr' (did you mean 'manager'?)",
        ("edu/entities/payment.json: /fields/0/detail: 'payment' is a detail of 'contract' already (field 'contract'): "
        "a detail has one parent")]


OVERLAY_GAPS = "the overlay's mistake is reported against the base file at the merged index (see the report)"


def test_a_formula_cycle_in_an_overlay_names_the_overlay_file(edu):
    assert problems(edu({"name": "contract", "fields": [field("a", "formula", expression="b"),
                                                         field("b", "formula", expression="a")]})) == [
        "edu/entities/contract.json: /fields/0/expression: formulas read each other in a cycle: a → b → a"]


def test_a_validation_rule_mistake_in_an_overlay_names_the_overlay_file(edu):
    assert problems(edu({"name": "contract", "validation_rules": [rule(fields=["amout"])]})) == [
        "edu/entities/contract.json: /validation_rules/0/fields/0: unknown field 'amout' (did you mean 'amount'?)"]


def test_a_rollup_condition_the_database_cannot_run_in_an_overlay_names_the_overlay_file(edu):
    catalog = load_catalog([edu({"name": "contract", "fields": [field(
        "open_payments", "integer", rollup={"entity": "payment", "via": "contract", "function": "count",
                                            "where": "len(status) > 0"})]})])
    with pytest.raises(DefinitionError) as info:
        compile_runtime(catalog)
    assert [str(p) for p in info.value.problems] == [
        ("edu/entities/contract.json: /fields/0/rollup/where: only stored fields can be compared in the database, "
        "not 'len(status)'")]


def test_an_overlay_adds_validation_rules_to_the_base_ones(edu):
    catalog = load_catalog([edu({"name": "contract", "validation_rules": [rule("positive", "amount > 0")]})])
    assert [r.name for r in catalog.entity("contract").validation_rules] == [
        "ends_after_start", "within_credit_limit", "positive"]


def test_definitions_validate_reports_what_only_compiling_finds(edu):
    """`crm definitions validate` compiles each pack too: a rollup condition SQL cannot run is reported
    there, against the overlay's file, not first at `crm init`."""
    pack = edu({"name": "contract", "fields": [field(
        "open_payments", "integer", rollup={"entity": "payment", "via": "contract", "function": "count",
                                            "where": "len(status) > 0"})]})
    assert validate_paths([Path(pack)])[0] == []  # loading alone finds nothing wrong
    found, checked = validate_paths([Path(pack)], compile_runtime)
    assert checked == 1 and [str(p) for p in found] == [
        "edu/entities/contract.json: /fields/0/rollup/where: only stored fields can be compared in the database, "
        "not 'len(status)'"]
