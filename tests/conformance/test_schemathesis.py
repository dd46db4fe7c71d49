"""The OpenAPI document says exactly what the server does: schemathesis against a real server.

For each database (SQLite, PostgreSQL) and each caller (an admin, a rep), every operation of
``GET /api/openapi.json`` is called with generated requests — valid ones (positive) and ones the
schema forbids (negative) — over HTTP on 127.0.0.1, and every response must pass:

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the Content-Type is one documented for that status;
- ``response_schema_conformance``: the JSON body matches the documented schema (records, pages,
  audit entries, errors...).

Most path ids are those of the seeded records (see ``conftest.py``) and creates also get a body known
to be valid, so reads and writes reach real records, not only 404s and 422s; a PATCH of a seeded record
that names no version is sent with the current one; deletes run last. ``POST /api/auth/revoke`` would
revoke the caller's own token and turn the rest of the run into 401s, so its test uses a token of its own.
The last test proves the checks can fail: a document that lies about the server is caught.

Bounded: ``CRM_SCHEMATHESIS_EXAMPLES`` examples per operation (default 8, deterministic: Hypothesis
derandomized, so the suite's pass/fail is stable; the module takes about 100 s on 2 cores). Setting it
(e.g. ``CRM_SCHEMATHESIS_EXAMPLES=200``) also randomizes the run, for long exploratory runs::

    CRM_SCHEMATHESIS_EXAMPLES=200 .venv/bin/pytest -p no:cacheprovider -q tests/conformance
"""

from __future__ import annotations

import os

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

EXAMPLES = int(os.environ.get("CRM_SCHEMATHESIS_EXAMPLES") or 0)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SETTINGS = hypothesis.settings(max_examples=EXAMPLES or 8, derandomize=not EXAMPLES, deadline=None, database=None,
                               suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate],
                               print_blob=True)
#: Not fuzzed with the caller's token (see the module docstring).
REVOKE = "POST /api/auth/revoke"


def load_schema(server) -> schemathesis.BaseSchema:
    response = requests.get(f"{server.url}/api/openapi.json", timeout=30)
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def entity_of(path: str) -> str | None:
    parts = path.split("/")
    return parts[3] if len(parts) > 4 and parts[1:3] == ["api", "records"] else None


def strategy(operation, server):
    """Positive and negative requests, plus ones that reach real data: path ids from the seeded
    records (or the uploaded file), and for a create a body known to be valid."""
    choices = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    entity = entity_of(operation.path)
    known = server.seeded.get(entity) if entity else server.files if operation.path == "/api/files/{id}" else None
    if known:
        choices += [operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"id": record_id})
                    for record_id in known]
    if entity and operation.method.upper() == "POST" and operation.path.count("/") == 3:
        choices.append(operation.as_strategy(GenerationMode.POSITIVE, body=server.samples[entity]))
    return st.one_of(*choices)


def with_current_version(case, server) -> None:
    """A PATCH of a seeded record that names no version names the current one, so the write itself
    (not only the version check) is exercised; a version the generator chose is left alone."""
    entity, record_id = entity_of(case.operation.path), (case.path_parameters or {}).get("id")
    if case.method.upper() != "PATCH" or record_id not in server.seeded.get(entity, ()):
        return
    if not isinstance(case.body, dict) or "version" in case.body or (case.headers or {}).get("If-Match"):
        return
    current = requests.get(f"{server.url}/api/records/{entity}/{record_id}", headers=server.headers("admin"),
                           timeout=30)
    if current.status_code == 200:
        case.body["version"] = current.json()["version"]


def exercise(operation, server, username: str) -> None:
    headers = server.headers(username)

    @SETTINGS
    @given(case=strategy(operation, server))
    def run(case):
        with_current_version(case, server)
        case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS, timeout=30)

    run()


def describe(exc: BaseException) -> str:
    """The failure as schemathesis words it (with its curl line), or the exception itself."""
    return str(exc) if str(exc) else repr(exc)


def ordered(operations):
    """Deletes last, so the seeded records are there for everything else."""
    return sorted(operations, key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))


@pytest.mark.parametrize("username", ["admin", "rep"])
def test_every_response_conforms_to_the_openapi_document(server, username):
    schema = load_schema(server)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    failures = []
    for operation in ordered(op for op in operations if op.label != REVOKE):
        try:
            exercise(operation, server, username)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            failures.append(f"== {operation.label} as {username} ==\n{describe(exc)}")
    assert not failures, "\n\n".join(failures)


def test_revoking_a_token_conforms_and_the_token_stops_working(server):
    schema = load_schema(server)
    token = requests.post(f"{server.url}/api/auth/token", timeout=10,
                          json={"username": "rep", "password": "rep-password"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    revoke = schema.find_operation_by_label(REVOKE)

    response = revoke.Case().call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)
    assert response.status_code == 204
    again = revoke.Case().call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "unauthorized"


def test_the_checks_catch_a_document_that_disagrees_with_the_server(server):
    """The same checks fail on a document that says the wrong thing: a record's version as text,
    and a 404 left out — so a pass above means the server and the document agree."""
    document = requests.get(f"{server.url}/api/openapi.json", timeout=30).json()
    document["components"]["schemas"]["LeadRecord"]["properties"]["version"] = {"type": "string"}
    del document["paths"]["/api/records/lead/{id}"]["get"]["responses"]["404"]
    operation = schemathesis.openapi.from_dict(document).find_operation_by_label("GET /api/records/lead/{id}")
    headers = server.headers("admin")

    with pytest.raises((AssertionError, BaseExceptionGroup)) as wrong_type:
        operation.Case(path_parameters={"id": server.seeded["lead"][0]}).call_and_validate(
            base_url=server.url, headers=headers, checks=CHECKS)
    with pytest.raises((AssertionError, BaseExceptionGroup)) as undocumented:
        operation.Case(path_parameters={"id": "no-such-record"}).call_and_validate(
            base_url=server.url, headers=headers, checks=CHECKS)

    assert "Response violates schema" in str(wrong_type.value) and 'is not of type "string"' in str(wrong_type.value)
    assert "Undocumented status code" in str(undocumented.value) and "404" in str(undocumented.value)
