"""HTTP API: metadata for clients (``/api/meta/entities``) and the OpenAPI document (``/api/openapi.json``).

Expected values are read from the base definitions themselves, so the API is checked against the
JSON an implementer wrote, not against a copy of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions" / "base" / "entities"
ROLES = DEFINITIONS.parent / "roles"
BASE_ENTITIES = {"lead", "account", "contact", "opportunity", "activity", "contract", "payment", "tender", "product"}
CONTRACT_TYPES = {"text", "textarea", "email", "phone", "url", "integer", "decimal", "currency", "percent", "boolean",
                  "date", "datetime", "select", "multiselect", "reference", "user", "formula", "autonumber", "geo",
                  "file"}
SYSTEM_READONLY = {"id", "version", "created_at", "updated_at", "created_by", "updated_by"}


def definition(entity: str) -> dict:
    return json.loads((DEFINITIONS / f"{entity}.json").read_text(encoding="utf-8"))


@pytest.fixture
def rep(auth):
    return auth("rep")


@pytest.fixture
def admin(auth):
    """A caller who sees every field (reps have hidden fields, e.g. opportunity cost and margin)."""
    return auth("admin")


def source_of(entity: str, reference: str) -> str:
    """The entity a reference field of ``entity`` points at."""
    return next(f["target"] for f in definition(entity)["fields"] if f["name"] == reference)


def field_rules(role: str, entity: str) -> dict[str, str]:
    """The role's per-field rules (hidden | read | write) for the entity, read from the role file."""
    document = json.loads((ROLES / f"{role}.json").read_text(encoding="utf-8"))
    return document["entities"].get(entity, document["entities"].get("*", {})).get("fields", {})


def describe(client, headers, entity: str) -> dict:
    response = client.get(f"/api/meta/entities/{entity}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def fields_by_name(described: dict) -> dict[str, dict]:
    return {f["name"]: f for f in described["fields"]}


def has_en_and_zh(label) -> bool:
    return isinstance(label, dict) and all(isinstance(label.get(k), str) and label[k] for k in ("en", "zh"))


# -- /api/meta/entities -------------------------------------------------------------------------
def test_the_entity_list_names_the_nine_base_entities_with_english_and_chinese_labels(client, rep):
    response = client.get("/api/meta/entities", headers=rep)

    assert response.status_code == 200
    data = response.json["data"]
    assert {e["name"] for e in data} == BASE_ENTITIES and len(data) == 9
    for entry in data:
        assert has_en_and_zh(entry["label"]), entry
        assert entry["label"] == definition(entry["name"])["label"]
    assert next(e for e in data if e["name"] == "tender")["label"] == {"en": "Tender", "zh": "标讯"}


@pytest.mark.parametrize("path", ["/api/meta/entities", "/api/meta/entities/opportunity"])
def test_metadata_needs_a_token(client, org, path):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"


def test_an_unknown_entity_is_404(client, rep):
    response = client.get("/api/meta/entities/spaceship", headers=rep)

    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


# -- /api/meta/entities/{entity} ----------------------------------------------------------------
def test_an_entity_carries_name_label_fields_stages_and_forms(client, rep):
    described = describe(client, rep, "opportunity")

    assert described["name"] == "opportunity"
    assert described["label"] == {"en": "Opportunity", "zh": "商机"}
    assert isinstance(described["fields"], list) and isinstance(described["stages"], list)
    assert isinstance(described["forms"], list) and described["forms"]


def test_every_field_has_name_type_label_required_and_readonly(client, rep):
    for f in describe(client, rep, "opportunity")["fields"]:
        assert {"name", "type", "label", "required", "readonly"} <= set(f), f
        assert isinstance(f["required"], bool) and isinstance(f["readonly"], bool), f
        assert has_en_and_zh(f["label"]), f


@pytest.mark.parametrize("entity", sorted(BASE_ENTITIES))
def test_field_types_are_the_contract_names(client, admin, entity):
    described = fields_by_name(describe(client, admin, entity))

    assert {f["type"] for f in described.values()} <= CONTRACT_TYPES
    for source in definition(entity)["fields"]:
        assert described[source["name"]]["type"] == source["type"], source["name"]


@pytest.mark.parametrize("entity", sorted(BASE_ENTITIES))
def test_fields_match_their_definition(client, admin, entity):
    described = fields_by_name(describe(client, admin, entity))

    for source in definition(entity)["fields"]:
        f = described[source["name"]]
        assert f["label"] == source["label"], source["name"]
        assert f["required"] is bool(source.get("required", False)), source["name"]
        for key in ("min", "max", "max_length", "target", "pattern"):
            if key in source:
                assert f[key] == source[key], (source["name"], key)
            else:
                assert f.get(key) is None, (source["name"], key)
        if "lookup" in source:  # the choices of the field it reads
            head, _, tail = source["lookup"].partition(".")
            source = next((s for s in definition(source_of(entity, head))["fields"] if s["name"] == tail), {})
        if "choices" in source:
            assert [(c["value"], c["label"]) for c in f["choices"]] == [(c["value"], c["label"]) for c in
                                                                        source["choices"]], source["name"]
        else:
            assert not f.get("choices"), source["name"]


def test_opportunity_fields_in_detail(client, admin):
    described = fields_by_name(describe(client, admin, "opportunity"))

    assert (described["name"]["type"], described["name"]["required"], described["name"]["readonly"],
            described["name"]["max_length"]) == ("text", True, False, 200)
    assert (described["account"]["type"], described["account"]["target"]) == ("reference", "account")
    assert (described["probability"]["min"], described["probability"]["max"]) == (0, 100)
    assert described["amount"]["type"] == "currency" and described["amount"]["min"] == 0
    assert [c["value"] for c in described["opportunity_type"]["choices"]] == ["new_business", "upsell", "renewal"]
    assert all(set(c) >= {"value", "label"} and has_en_and_zh(c["label"])
               for c in described["opportunity_type"]["choices"])
    assert (described["weighted_amount"]["type"], described["weighted_amount"]["readonly"]) == ("formula", True)
    assert described["margin"]["readonly"] is True
    assert described["lost_reason"]["required"] is False


def test_formula_autonumber_readonly_and_system_fields_are_readonly(client, admin):
    opportunity = fields_by_name(describe(client, admin, "opportunity"))
    contract = fields_by_name(describe(client, admin, "contract"))

    assert SYSTEM_READONLY <= set(opportunity)
    for name in SYSTEM_READONLY | {"weighted_amount", "margin"}:
        assert opportunity[name]["readonly"] is True, name
    assert (contract["contract_no"]["type"], contract["contract_no"]["readonly"]) == ("autonumber", True)
    assert contract["paid_amount"]["readonly"] is True      # declared readonly in the definition
    assert contract["unpaid_amount"]["readonly"] is True    # formula
    assert contract["name"]["readonly"] is False and contract["amount"]["readonly"] is False


@pytest.mark.parametrize("role", ["admin", "rep"])
def test_fields_a_caller_may_write_are_not_readonly(client, auth, role):
    """Writable = writable by definition and not restricted by the caller's role; hidden fields are absent."""
    for entity in ("lead", "opportunity", "account"):
        described = fields_by_name(describe(client, auth(role), entity))
        rules = field_rules(role, entity)
        for source in definition(entity)["fields"]:
            name = source["name"]
            if rules.get(name) == "hidden":
                assert name not in described, (entity, name)
                continue
            writable = not source.get("readonly") and source["type"] not in ("formula", "autonumber") \
                and "lookup" not in source and "rollup" not in source and rules.get(name, "write") == "write"
            assert described[name]["readonly"] is (not writable), (entity, name)


def test_stages_carry_name_label_probability_and_category_in_order(client, rep):
    for entity in ("opportunity", "lead", "contract", "tender"):
        stages = describe(client, rep, entity)["stages"]
        expected = [(s["name"], s["label"], s["probability"], s["category"]) for s in definition(entity)["stages"]]
        assert [(s["name"], s["label"], s["probability"], s["category"]) for s in stages] == expected, entity
        assert {s["category"] for s in stages} <= {"open", "won", "lost"}


def test_an_unstaged_entity_has_no_stages(client, rep):
    described = describe(client, rep, "account")

    assert described["stages"] == []
    assert "stage" not in fields_by_name(described)


# -- /api/openapi.json --------------------------------------------------------------------------
@pytest.fixture
def openapi(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def resolve(document: dict, ref: str) -> dict:
    assert ref.startswith("#/")
    node = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def record_schema(document: dict, entity: str) -> dict:
    """The schema of one record of ``entity``, as the GET of one record documents it."""
    content = document["paths"][f"/api/records/{entity}/{{id}}"]["get"]["responses"]["200"]["content"]
    schema = content["application/json"]["schema"]
    return resolve(document, schema["$ref"]) if "$ref" in schema else schema


def test_the_openapi_document_needs_no_token_and_is_openapi_3(client, openapi):
    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["title"] and openapi["info"]["version"]


def test_the_openapi_document_has_the_paths_of_every_entity(openapi):
    for entity in BASE_ENTITIES:
        collection = openapi["paths"][f"/api/records/{entity}"]
        one = openapi["paths"][f"/api/records/{entity}/{{id}}"]
        assert {"get", "post"} <= set(collection), entity
        assert {"get", "patch", "delete"} <= set(one), entity
    assert "/api/auth/token" in openapi["paths"]


def test_the_list_operation_documents_filters_sort_and_paging(openapi):
    parameters = {p["name"] for p in openapi["paths"]["/api/records/lead"]["get"]["parameters"]}

    assert {"q", "sort", "limit", "cursor", "page", "count"} <= parameters
    assert any(name.startswith("filter[") for name in parameters)


@pytest.mark.parametrize("entity", sorted(BASE_ENTITIES))
def test_each_entity_has_a_schema_with_all_its_fields(openapi, entity):
    properties = record_schema(openapi, entity)["properties"]

    assert {f["name"] for f in definition(entity)["fields"]} <= set(properties)
    assert {"id", "version", "created_at", "updated_at"} <= set(properties)


def test_schemas_describe_field_types(openapi):
    properties = record_schema(openapi, "opportunity")["properties"]

    close = properties["expected_close_date"]
    assert (close["type"], close["format"]) == ("string", "date")
    assert properties["amount"]["type"] == "number"
    assert properties["name"]["maxLength"] == 200
    assert set(properties["opportunity_type"]["enum"]) - {None} == {"new_business", "upsell", "renewal"}
    assert properties["version"]["type"] == "integer"
    assert properties["weighted_amount"].get("readOnly") is True


def test_the_openapi_document_is_valid(openapi):
    validator = pytest.importorskip("openapi_spec_validator")

    validator.validate(openapi)
