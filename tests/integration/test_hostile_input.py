"""Hostile input: every class of bad request is a 4xx with the usual error body, on both databases.

Each class once answered 500 somewhere (issue 6): deeply nested JSON, lone UTF-16 surrogates, NUL
characters that reach PostgreSQL, datetimes whose UTC value falls outside years 1–9999, values of the
wrong JSON shape, enormous paging numbers, cursors that decode to values of the wrong type, overlong
login names, and ``/login?next=`` targets that leave the site.

Where a class applies to field values the cases are generated from the runtime's catalog
(``installation.runtime.catalog.entities``), so a new entity or field is covered without touching
this file. Each data-driven test collects every failing case and reports them all at once.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from crm_platform.engine.query import OPERATORS

URL = "/api/records"
NUL = "ab\x00cd"
#: What a system column filter/sort may name besides the entity's fields.
SYSTEM_COLUMNS = ("id", "version", "owner", "team", "stage", "created_at", "created_by", "updated_at", "updated_by")


# -- helpers ----------------------------------------------------------------------------------------------
def error_of(response, status: int, code: str) -> dict:
    """The error body of ``response``, asserting its status and code."""
    text = response.get_data(as_text=True)[:400]
    assert response.status_code == status, (response.status_code, text)
    assert response.is_json, text
    error = response.json["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"], error
    return error


def mismatch(response, status: int, code: str, field: str | None = None) -> str | None:
    """Why ``response`` is not a ``status``/``code`` error (naming ``field``), or None if it is."""
    got = response.status_code
    text = response.get_data(as_text=True)[:200]
    if got != status or not response.is_json:
        return f"{got} {text}"
    error = (response.json or {}).get("error") or {}
    if error.get("code") != code:
        return f"{got} code={error.get('code')!r}"
    if field is not None and field not in (error.get("fields") or {}):
        return f"{got} fields={sorted(error.get('fields') or {})} (missing {field!r})"
    return None


def entities(installation):
    return installation.runtime.catalog.entities


def writable(installation, entity: str) -> dict[str, str]:
    """Field name → type for every value admin may send on create (stage and owner included)."""
    er = installation.runtime.entity(entity)
    types = {f.name: f.type for f in er.entity.fields}
    types.update(stage="select", owner="user")
    return {name: types[name] for name in er.validator.checks}


@pytest.fixture
def admin(auth):
    return auth("admin")


@pytest.fixture
def lead(installation, org):
    """One of rep's leads (made by the system)."""
    return installation.records(None).create("lead", {"name": "Hostile Lead", "owner": org["rep"].id,
                                                      "mobile": "13800000001"})


def body_endpoints(lead: dict) -> list[tuple[str, str, str, Callable[[str], str]]]:
    """(name, method, path, wrap) for each endpoint that reads a JSON object body; ``wrap(raw)`` is a
    body with ``raw`` (JSON text) in the place of a value of that endpoint."""
    base = f"{URL}/lead/{lead['id']}"
    return [
        ("token username", "POST", "/api/auth/token", lambda raw: f'{{"username": {raw}, "password": "x"}}'),
        ("token password", "POST", "/api/auth/token", lambda raw: f'{{"username": "rep", "password": {raw}}}'),
        ("create", "POST", f"{URL}/lead", lambda raw: f'{{"name": {raw}}}'),
        ("patch", "PATCH", base, lambda raw: f'{{"version": {lead["version"]}, "company": {raw}}}'),
        ("assign", "POST", f"{base}/assign", lambda raw: f'{{"owner": {raw}}}'),
        ("delete", "DELETE", base, lambda raw: f'{{"version": {raw}}}'),
    ]


#: Endpoints that change something but take no JSON body (form posts, multipart, no body at all).
NO_JSON_BODY = {"api_auth.revoke_token", "api_files.upload", "api_records.claim_record",
                "api_records.release_record", "session_auth.login", "session_auth.logout"}
JSON_BODY = {"api_auth.issue_token", "api_records.create_record", "api_records.update_record",
             "api_records.delete_record", "api_records.assign_record"}


def send(client, method: str, path: str, raw: str | bytes, headers: dict):
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return client.open(path, method=method, data=data, content_type="application/json", headers=headers)


# -- deeply nested JSON -----------------------------------------------------------------------------------
DEEP = {
    "lists 1000": "[" * 1000 + "]" * 1000,
    "objects 1000": '{"a":' * 1000 + "1" + "}" * 1000,
    "lists 10000": "[" * 10000 + "]" * 10000,
    "objects 10000": '{"a":' * 10000 + "1" + "}" * 10000,
    "unclosed lists 100000": "[" * 100000,
}


def test_deeply_nested_json_is_400_malformed_on_every_json_endpoint(client, admin, lead, installation):
    failures = []
    for shape, deep in DEEP.items():
        for name, method, path, wrap in body_endpoints(lead):
            for where, raw in (("whole body", deep), ("inside a value", wrap(deep))):
                response = send(client, method, path, raw, admin)
                problem = mismatch(response, 400, "malformed")
                if problem:
                    failures.append(f"{shape}: {name} ({where}): {problem}")
    assert not failures, failures
    assert installation.records(None).get("lead", lead["id"]) == lead  # nothing was written
    # endpoints that take no body must still never fail on one (release puts the lead in the pool)
    for path in (f"{URL}/lead/{lead['id']}/release", f"{URL}/lead/{lead['id']}/claim", "/api/auth/revoke"):
        for deep in DEEP.values():
            response = send(client, "POST", path, deep, admin)
            assert response.status_code < 500, (path, response.status_code)


def test_every_endpoint_that_takes_a_body_is_in_the_hostile_body_tests(app):
    """A new POST/PUT/PATCH/DELETE endpoint must join ``body_endpoints`` (or ``NO_JSON_BODY``)."""
    writing = {rule.endpoint for rule in app.url_map.iter_rules()
               if rule.methods & {"POST", "PUT", "PATCH", "DELETE"}}
    assert writing - JSON_BODY - NO_JSON_BODY == set()
    assert JSON_BODY <= writing


def test_shallow_json_still_works_after_deep_json(client, admin, lead):
    error_of(send(client, "POST", f"{URL}/lead", "[" * 5000 + "]" * 5000, admin), 400, "malformed")
    created = client.post(f"{URL}/lead", json={"name": "After"}, headers=admin)
    assert created.status_code == 201 and created.json["name"] == "After"


# -- lone surrogates ----------------------------------------------------------------------------------------
LONE = {"high": r'"\ud800"', "low": r'"\udfff"', "high then letter": r'"\ud800A"',
        "high then escaped letter": r'"\ud800\u0041"', "low then high": r'"\udfff\ud800"',
        "inside text": r'"abc\ud800def"'}


def test_a_lone_surrogate_anywhere_in_a_json_body_is_400_malformed(client, admin, lead, installation):
    failures = []
    for kind, lone in LONE.items():
        failures += _lone_surrogate_failures(client, admin, lead, lone, kind)
    assert not failures, failures
    assert installation.records(None).get("lead", lead["id"]) == lead
    assert [r["id"] for r in installation.records(None).list("lead")["data"]] == [lead["id"]]


def _lone_surrogate_failures(client, admin, lead, lone: str, kind: str) -> list[str]:
    failures = []
    for name, method, path, wrap in body_endpoints(lead):
        response = send(client, method, path, wrap(lone), admin)
        problem = mismatch(response, 400, "malformed")
        if problem:
            failures.append(f"{kind}: {name}: {problem}")
    for name, method, path, raw in [
        ("create key", "POST", f"{URL}/lead", f'{{"name": "Key", {lone}: "x"}}'),
        ("patch key", "PATCH", f"{URL}/lead/{lead['id']}", f'{{"version": 1, {lone}: "x"}}'),
        ("token key", "POST", "/api/auth/token", f'{{"username": "rep", "password": "rep-password", {lone}: 1}}'),
        ("list item", "POST", f"{URL}/account", f'{{"name": "Acme", "tags": [{lone}]}}'),
        ("geo key", "POST", f"{URL}/account", f'{{"name": "Acme", "location": {{"lat": 1, {lone}: 2}}}}'),
    ]:
        response = send(client, method, path, raw, admin)
        problem = mismatch(response, 400, "malformed")
        if problem:
            failures.append(f"{kind}: {name}: {problem}")
    return failures


def test_raw_bytes_that_are_not_utf8_are_400_malformed(client, admin):
    for raw in (b'{"name": "\xed\xa0\x80"}', b'{"name": "\xff"}', b'{"name": "\xc3"}'):
        error_of(send(client, "POST", f"{URL}/lead", raw, admin), 400, "malformed")
        error_of(send(client, "POST", "/api/auth/token", raw.replace(b"name", b"username"), {}), 400, "malformed")


def test_a_valid_surrogate_pair_is_a_character_and_round_trips(client, admin, lead):
    created = send(client, "POST", f"{URL}/lead", r'{"name": "Smile \ud83d\ude00", "company": "\ud83d\ude00 Co"}',
                   admin)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.json["name"] == "Smile 😀" and created.json["company"] == "😀 Co"
    fetched = client.get(f"{URL}/lead/{created.json['id']}", headers=admin)
    assert fetched.json["name"] == "Smile 😀"
    found = client.get(f"{URL}/lead", query_string={"q": "😀"}, headers=admin)
    assert [r["id"] for r in found.json["data"]] == [created.json["id"]]
    patched = send(client, "PATCH", f"{URL}/lead/{lead['id']}", r'{"version": 1, "company": "\ud83d\ude00"}', admin)
    assert patched.status_code == 200 and patched.json["company"] == "😀"


ENCODED_SURROGATES = ["q=%ED%A0%80", "q=%ED%BF%BF", "q=a%ED%A0%80b", "filter[name]=%ED%A0%80",
                      "filter[name][contains]=%ED%A0%80", "filter[name][in]=a,%ED%A0%80", "sort=%ED%A0%80",
                      "cursor=%ED%A0%80", "%ED%A0%80=1", "filter[%ED%A0%80]=1", "q=%00%ED%A0%80"]


def _json_answer(response) -> str | None:
    """None if ``response`` is a non-5xx JSON answer with ``data`` or ``error``, else what it was."""
    if response.status_code >= 500 or not response.is_json:
        return f"{response.status_code} {response.get_data(as_text=True)[:200]}"
    body = response.json
    return None if isinstance(body, dict) and ("data" in body or "error" in body or "allowed" in body) \
        else f"{response.status_code} {str(body)[:200]}"


def test_percent_encoded_surrogates_in_a_query_string_are_never_5xx(client, admin, lead):
    failures = []
    for query in ENCODED_SURROGATES:
        problem = _json_answer(client.get(f"{URL}/lead?{query}", headers=admin))
        if problem:
            failures.append(f"list ?{query}: {problem}")
    for param in ("user", "id", "field", "entity", "action"):
        query = {"entity": "lead", "action": "read", param: "x"}
        url = "/api/permissions/explain?" + "&".join(f"{k}={v}" for k, v in query.items() if k != param)
        problem = _json_answer(client.get(f"{url}&{param}=%ED%A0%80", headers=admin))
        if problem:
            failures.append(f"explain {param}: {problem}")
    for path in (f"{URL}/lead/%ED%A0%80", f"{URL}/%ED%A0%80", "/api/files/%ED%A0%80", f"{URL}/lead/%ED%A0%80/history"):
        problem = _json_answer(client.get(path, headers=admin))
        if problem:
            failures.append(f"GET {path}: {problem}")
    assert not failures, failures


# -- NUL characters -----------------------------------------------------------------------------------------
#: A NUL in a value of each field type that takes a string.
NUL_VALUES = {"multiselect": [NUL], "decimal": "1\x00", "currency": "1\x00", "percent": "1\x00",
              "date": "2026-01-01\x00", "datetime": "2026-01-01T00:00:00+00:00\x00"}
STRING_TYPES = {"text", "textarea", "email", "phone", "url", "select", "multiselect", "reference", "user", "file",
                "date", "datetime", "decimal", "currency", "percent"}


def test_the_catalog_has_a_field_of_every_type_that_takes_a_string(runtime):
    """The NUL and shape tests below are only as good as the catalog they walk (the base pack has no
    ``decimal`` field; ``currency`` and ``percent`` share its type)."""
    seen = {f.type for e in runtime.catalog.entities.values() for f in e.fields}
    assert STRING_TYPES - {"decimal"} <= seen, STRING_TYPES - seen


def test_a_nul_in_any_field_value_is_422_naming_that_field(client, admin, installation):
    failures = []
    for entity in entities(installation):
        for name, kind in writable(installation, entity).items():
            if kind not in STRING_TYPES:
                continue
            value = NUL_VALUES.get(kind, NUL)
            response = client.post(f"{URL}/{entity}", json={name: value}, headers=admin)
            problem = mismatch(response, 422, "validation", name)
            if problem:
                failures.append(f"POST {entity}.{name} ({kind}): {problem}")
    assert not failures, failures
    assert all(installation.records(None).list(entity)["data"] == [] for entity in entities(installation))


def test_a_nul_in_any_field_of_a_patch_is_422_naming_that_field(client, admin, installation, lead):
    failures = []
    for name, kind in writable(installation, "lead").items():
        if kind not in STRING_TYPES:
            continue
        response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 1, name: NUL_VALUES.get(kind, NUL)},
                                headers=admin)
        problem = mismatch(response, 422, "validation", name)
        if problem:
            failures.append(f"PATCH lead.{name} ({kind}): {problem}")
    assert not failures, failures
    assert installation.records(None).get("lead", lead["id"]) == lead


def test_a_nul_in_a_record_id_in_the_path_is_400_or_404(client, admin, lead, installation):
    failures = []
    for entity in entities(installation):
        base = f"{URL}/{entity}/abc%00def"
        for method, path, body in [("GET", base, None), ("PATCH", base, {"version": 1, "name": "x"}),
                                   ("DELETE", base, None), ("GET", f"{base}/history", None),
                                   ("POST", f"{base}/claim", None), ("POST", f"{base}/release", None),
                                   ("POST", f"{base}/assign", {"owner": None})]:
            response = client.open(path, method=method, json=body, headers=admin)
            if response.status_code not in (400, 404) or not response.is_json or \
                    response.json["error"]["code"] not in ("malformed", "not_found"):
                failures.append(f"{method} {path}: {response.status_code} {response.get_data(as_text=True)[:150]}")
    # a NUL after a real id does not reach the real record either
    for method in ("GET", "DELETE"):
        response = client.open(f"{URL}/lead/{lead['id']}%00", method=method, headers=admin)
        if response.status_code not in (400, 404):
            failures.append(f"{method} real id + NUL: {response.status_code}")
    response = client.get("/api/files/abc%00def", headers=admin)
    if response.status_code not in (400, 404):
        failures.append(f"GET /api/files/abc%00def: {response.status_code}")
    assert not failures, failures
    assert installation.records(None).get("lead", lead["id"]) == lead


def test_a_nul_in_any_filter_operator_value_is_400_malformed(client, admin, installation):
    failures = []
    for entity, definition in entities(installation).items():
        failures += _nul_filter_failures(client, admin, entity, definition)
    assert not failures, failures


def _nul_filter_failures(client, admin, entity: str, definition) -> list[str]:
    failures = []
    for name in [f.name for f in definition.fields] + list(SYSTEM_COLUMNS):
        for op in OPERATORS:
            value = "a,b\x00c" if op == "in" else NUL
            response = client.get(f"{URL}/{entity}", query_string={f"filter[{name}][{op}]": value}, headers=admin)
            problem = mismatch(response, 400, "malformed")
            if problem:
                failures.append(f"{entity} filter[{name}][{op}]: {problem}")
        response = client.get(f"{URL}/{entity}", query_string={f"filter[{name}]": NUL}, headers=admin)
        problem = mismatch(response, 400, "malformed")
        if problem:
            failures.append(f"{entity} filter[{name}]: {problem}")
    return failures


LIST_PARAMS_WITH_NUL = [("q", NUL), ("q", "\x00"), ("sort", "name\x00"), ("sort", "\x00"), ("cursor", "eyJr\x00"),
                        ("limit", "1\x00"), ("page", "1\x00"), ("count", "true\x00")]


def test_a_nul_in_a_list_parameter_is_400_malformed(client, admin, installation, lead):
    failures = []
    for entity in entities(installation):
        for param, value in LIST_PARAMS_WITH_NUL:
            problem = mismatch(client.get(f"{URL}/{entity}", query_string={param: value}, headers=admin), 400,
                               "malformed")
            if problem:
                failures.append(f"{entity} {param}={value!r}: {problem}")
    assert not failures, failures


def test_a_nul_in_an_explain_parameter_is_400_malformed(client, auth, lead):
    failures = []
    for param in ("user", "id", "field", "entity", "action"):
        query = {"entity": "lead", "action": "read", "id": lead["id"], "field": "name", "user": "rep"}
        query[param] = query[param] + "\x00"
        for who in ("admin", "rep", "supervisor"):
            response = client.get("/api/permissions/explain", query_string=query, headers=auth(who))
            problem = mismatch(response, 400, "malformed")
            if problem:
                failures.append(f"{who} {param}: {problem}")
    assert not failures, failures


def test_an_assign_owner_with_a_nul_or_of_the_wrong_shape_is_400_malformed(client, admin, org, lead, installation):
    for owner in (org["rep2"].id + "\x00", "\x00", NUL, ["x"], {"id": "x"}, 12, True, [org["rep2"].id]):
        error_of(client.post(f"{URL}/lead/{lead['id']}/assign", json={"owner": owner}, headers=admin), 400,
                 "malformed")
    assert installation.records(None).get("lead", lead["id"]) == lead


LOGINS_WITH_NUL = [{"username": "rep\x00", "password": "rep-password"}, {"username": "\x00", "password": "x"},
                   {"username": "rep", "password": "rep-password\x00"}, {"username": "rep", "password": "\x00"}]


def test_a_nul_in_a_login_is_400_malformed(client, org):
    for body in LOGINS_WITH_NUL:
        error_of(client.post("/api/auth/token", json=body), 400, "malformed")
    # none of them counted as a failed login for rep: the right password still works
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200


UPLOADS_WITH_NUL = [("a\x00b.txt", "text/plain"), ("\x00", "text/plain"), ("ok.txt", "text/pl\x00ain"),
                    ("ok.txt", "\x00")]


def test_a_nul_in_an_upload_name_or_content_type_is_400_malformed(client, auth, installation):
    rep = auth("rep")
    for name, content_type in UPLOADS_WITH_NUL:
        response = client.post("/api/files", data={"file": (io.BytesIO(b"data"), name, content_type)}, headers=rep,
                               content_type="multipart/form-data")
        assert mismatch(response, 400, "malformed") is None, (name, content_type, mismatch(response, 400, "malformed"))
    control = client.post("/api/files", data={"file": (io.BytesIO(b"data"), "ok.txt", "text/plain")}, headers=rep,
                          content_type="multipart/form-data")
    assert control.status_code == 201


UPLOADS_NOT_UTF8 = [(b"a\xed\xa0\x80.txt", b"text/plain"), (b"a\xff.txt", b"text/plain"),
                    (b"ok.txt", b"text/\xed\xa0\x80"), (b"a%00.txt", b"text/plain")]


def test_bytes_that_are_not_utf8_in_an_upload_name_or_type_are_never_5xx(client, auth):
    """The test client cannot encode a lone surrogate, so these multipart bodies are built by hand."""
    boundary = b"----hostile"
    for name, content_type in UPLOADS_NOT_UTF8:
        body = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name
                + b"\"\r\nContent-Type: " + content_type + b"\r\n\r\ndata\r\n--" + boundary + b"--\r\n")
        response = client.post("/api/files", data=body, headers=auth("rep"),
                               content_type="multipart/form-data; boundary=" + boundary.decode())
        assert response.status_code in (201, 400), (name, response.status_code, response.get_data(as_text=True)[:300])
        assert response.is_json
        if response.status_code == 201:
            stored = response.json
            stored["name"].encode("utf-8")  # whatever was kept is storable text
            download = client.get(f"/api/files/{stored['id']}", headers=auth("rep"))
            assert download.status_code == 200 and download.data == b"data"
        else:
            assert response.json["error"]["code"] == "malformed"


# -- datetimes outside years 1–9999 in UTC ------------------------------------------------------------------
OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00", "0001-01-01T00:59:59+01:00",
                "9999-12-31T23:59:59-00:01"]


def _datetime_fields(installation):
    return [(name, f.name) for name, e in entities(installation).items() for f in e.fields
            if f.type == "datetime" and f.name in installation.runtime.entity(name).validator.checks]


def test_a_datetime_value_outside_the_years_1_to_9999_in_utc_is_422_on_that_field(client, admin, installation):
    cases = _datetime_fields(installation)
    assert cases
    failures = []
    for entity, name in cases:
        for value in OUT_OF_RANGE:
            response = client.post(f"{URL}/{entity}", json={name: value}, headers=admin)
            problem = mismatch(response, 422, "validation", name)
            if problem:
                failures.append(f"{entity}.{name}={value}: {problem}")
    assert not failures, failures
    # the edges themselves are fine
    edge = client.post(f"{URL}/lead", json={"name": "Edge", "next_follow_up_at": "0001-01-01T00:00:00+00:00",
                                            "last_contacted_at": "9999-12-31T23:59:59+00:00"}, headers=admin)
    assert edge.status_code == 201, edge.get_data(as_text=True)
    assert edge.json["next_follow_up_at"].startswith("0001-01-01T00:00:00")
    assert edge.json["last_contacted_at"].startswith("9999-12-31T23:59:59")


def test_a_datetime_filter_outside_the_years_1_to_9999_in_utc_is_400_malformed(client, admin, installation):
    cases = _datetime_fields(installation) + [(e, n) for e in entities(installation) for n in ("created_at",
                                                                                               "updated_at")]
    failures = []
    for entity, name in cases:
        for op in ("eq", "ne", "lt", "lte", "gt", "gte", "in"):
            for value in OUT_OF_RANGE:
                response = client.get(f"{URL}/{entity}", query_string={f"filter[{name}][{op}]": value}, headers=admin)
                problem = mismatch(response, 400, "malformed")
                if problem:
                    failures.append(f"{entity} filter[{name}][{op}]={value}: {problem}")
    assert not failures, failures


# -- values of the wrong shape ------------------------------------------------------------------------------
_NOT_A_STRING = [["a"], {"a": "b"}, [["a"]], True, False, 12, 1.5, [], {}]
WRONG = {
    **{kind: _NOT_A_STRING for kind in ("text", "textarea", "email", "phone", "url", "select", "reference", "user",
                                        "file", "date", "datetime")},
    "integer": ["12", ["1"], {"a": 1}, [[1]], True, 1.5, []],
    "decimal": [["1"], {"a": 1}, [[1]], True, [], {}],
    "boolean": ["true", 1, 0, ["true"], {"a": True}, [[True]], []],
    "multiselect": ["a", {"a": 1}, [["a"]], [{"a": 1}], [[]], True, 12, [12], [True]],
    "geo": ["31,121", [31, 121], {"lat": [1], "lon": 2}, {"lat": "31", "lon": "121"}, {"lat": {"a": 1}, "lon": 1},
            True, 12, {"lat": 1}, {"lat": True, "lon": 1}],
}
WRONG["currency"] = WRONG["percent"] = WRONG["decimal"]


def test_a_value_of_the_wrong_shape_is_422_naming_that_field(client, admin, installation):
    failures = []
    for entity in entities(installation):
        for name, kind in writable(installation, entity).items():
            assert kind in WRONG, f"add wrong shapes for the {kind!r} type"
            for value in WRONG[kind]:
                response = client.post(f"{URL}/{entity}", json={name: value}, headers=admin)
                problem = mismatch(response, 422, "validation", name)
                if problem:
                    failures.append(f"{entity}.{name} ({kind}) = {json.dumps(value)}: {problem}")
    assert not failures, failures
    assert all(installation.records(None).list(entity)["data"] == [] for entity in entities(installation))


def test_stage_and_owner_of_the_wrong_shape_in_a_patch_are_422_naming_them(client, admin, installation, lead):
    failures = []
    for name in ("stage", "owner", "name", "source", "region"):
        for value in _NOT_A_STRING + [[lead["stage"]], {"stage": "assigned"}]:
            response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 1, name: value}, headers=admin)
            problem = mismatch(response, 422, "validation", name)
            if problem:
                failures.append(f"{name} = {json.dumps(value)}: {problem}")
    assert not failures, failures
    assert installation.records(None).get("lead", lead["id"]) == lead


# -- paging -------------------------------------------------------------------------------------------------
BAD_PAGING = [{"page": str(10 ** 30)}, {"page": "99999999999"}, {"limit": str(10 ** 30)}, {"limit": "-1"},
              {"page": "0"}, {"page": "-1"}, {"limit": "0"}, {"page": str(2 ** 63)}, {"limit": "1e3"},
              {"page": "1.5"}, {"page": "99999999999", "limit": "200"}, {"page": "1", "limit": str(2 ** 64)}]


def test_an_enormous_or_impossible_page_or_limit_is_400_malformed(client, admin, lead, installation):
    failures = []
    for entity in entities(installation):
        for query in BAD_PAGING:
            problem = mismatch(client.get(f"{URL}/{entity}", query_string=query, headers=admin), 400, "malformed")
            if problem:
                failures.append(f"{entity} {query}: {problem}")
    assert not failures, failures
    # reasonable paging still works
    response = client.get(f"{URL}/lead", query_string={"page": "2", "limit": "200"}, headers=admin)
    assert response.status_code == 200 and response.json["data"] == []
    response = client.get(f"{URL}/lead", query_string={"page": "1", "limit": "1"}, headers=admin)
    assert response.status_code == 200 and [r["id"] for r in response.json["data"]] == [lead["id"]]


# -- cursors ------------------------------------------------------------------------------------------------
def _cursor(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decoded(cursor: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


WRONG_CURSOR_VALUES = [5, -1, 1.5, [1], ["2026-01-01"], {"a": 1}, {"t": 5}, {"t": "not a date"}, {"t": ["x"]},
                       {"t": None}, "not-a-date", True, False, "ab\x00cd", {"t": "2026-01-01T00:00:00\x00"},
                       10 ** 30, "\ud800"]


CURSOR_SORTS = [None, "score", "name", "-last_contacted_at", "stage", "-version"]


def test_a_cursor_that_decodes_to_values_of_the_wrong_type_is_400_malformed(client, admin, installation, org):
    system = installation.records(None)
    for n in range(3):
        system.create("lead", {"name": f"Lead {n}", "score": n, "owner": org["rep"].id,
                               "last_contacted_at": f"2026-01-0{n + 1}T00:00:00+00:00"})
    failures = []
    for sort in CURSOR_SORTS:
        failures += _forged_cursor_failures(client, admin, sort)
    assert not failures, failures


def _forged_cursor_failures(client, admin, sort: str | None) -> list[str]:
    query = {"limit": "1"} | ({"sort": sort} if sort else {})
    first = client.get(f"{URL}/lead", query_string=query, headers=admin)
    assert first.status_code == 200 and first.json["paging"]["has_more"], first.json
    real = first.json["paging"]["next_cursor"]
    payload = _decoded(real)
    assert set(payload) == {"k", "v"}
    # control: the real cursor, re-encoded the same way, reads the next page
    again = client.get(f"{URL}/lead", query_string={**query, "cursor": _cursor(payload)}, headers=admin)
    assert again.status_code == 200 and len(again.json["data"]) == 1, (sort, again.get_data(as_text=True)[:300])
    assert again.json["data"][0]["id"] != first.json["data"][0]["id"]

    failures = []
    for position, (key, original) in enumerate(zip(payload["k"], payload["v"], strict=True)):
        for bad in WRONG_CURSOR_VALUES:
            if key.lstrip("-") in ("id", "name", "stage") and type(bad) is str and "\x00" not in bad \
                    and "\ud800" not in bad:
                continue  # a string is the right type for a text key
            if key.lstrip("-") in ("score", "version") and type(bad) is int and abs(bad) < 2 ** 63:
                continue  # any integer is a value an integer key may hold
            values = list(payload["v"])
            values[position] = bad
            forged = base64.urlsafe_b64encode(json.dumps({"k": payload["k"], "v": values}).encode("utf-8",
                                              "surrogatepass")).decode().rstrip("=")
            response = client.get(f"{URL}/lead", query_string={**query, "cursor": forged}, headers=admin)
            problem = mismatch(response, 400, "malformed")
            if problem:
                failures.append(f"sort={sort}: {key} ({original!r}) -> {bad!r}: {problem}")
    for forged in ({"k": payload["k"]}, {"v": payload["v"]}, {"k": payload["k"], "v": payload["v"][:-1]},
                   {"k": payload["k"], "v": payload["v"] + [1]}, {"k": "x", "v": payload["v"]},
                   {"k": payload["k"], "v": "x"}, [payload["k"], payload["v"]], "x", 5, None):
        response = client.get(f"{URL}/lead", query_string={**query, "cursor": _cursor(forged)}, headers=admin)
        problem = mismatch(response, 400, "malformed")
        if problem:
            failures.append(f"sort={sort}: {json.dumps(forged)[:60]}: {problem}")
    return failures


# -- overlong login names -----------------------------------------------------------------------------------
def test_a_10000_character_username_is_401_then_429_never_5xx(client, org):
    body = {"username": "u" * 10_000, "password": "whatever-password"}
    answers = [client.post("/api/auth/token", json=body) for _ in range(6)]
    for response in answers[:5]:
        error_of(response, 401, "unauthorized")
    error_of(answers[5], 429, "rate_limited")
    # the per-username lock-out is for that name only
    assert client.post("/api/auth/token", json={"username": "rep", "password": "rep-password"}).status_code == 200


def _csrf(client) -> str:
    """The login page's CSRF token (as tests/integration/test_session_auth.py reads it)."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/login").text).group(1)


def test_hostile_usernames_and_passwords_at_the_login_page_are_4xx_never_5xx(client, org):
    failures = []
    for username, password in [("u" * 10_000, "x" * 10), ("rep%00", "rep-password"), ("rep", "rep-password%00"),
                               ("%ED%A0%80", "x"), ("rep", "%ED%A0%80"), ("%00", "%00")]:
        body = f"username={username}&password={password}&csrf_token={_csrf(client)}"
        response = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
        if not 400 <= response.status_code < 500 or "current-user" in client.get("/").text:
            failures.append(f"{username[:20]!r}/{password[:20]!r}: {response.status_code}")
    assert not failures, failures


# -- /login?next= -------------------------------------------------------------------------------------------
def _form_login(app, next_target: str):
    client = app.test_client()
    return client.post(f"/login?next={next_target}",
                       data={"username": "rep", "password": "rep-password", "csrf_token": _csrf(client)})


def _same_site(location: str) -> bool:
    # what a browser would do with it: drop tabs and newlines, read backslashes as slashes
    seen = "".join(ch for ch in location if ch not in "\t\r\n").replace("\\", "/")
    parts = urlsplit(seen)
    return seen.startswith("/") and not seen.startswith("//") and not parts.scheme and not parts.netloc


OFF_SITE = ["/%09/evil.example", "//evil.example", "/\\evil.example", "/%5Cevil.example", "https://evil.example",
            "%2F%2Fevil.example", "/%2F/evil.example", "/%0A/evil.example", "/%0D/evil.example", "%09//evil.example",
            "http:evil.example", "javascript:alert(1)", "/%09%09/evil.example", "///evil.example", "/%5C/evil.example",
            "%5C%5Cevil.example", "/%20/evil.example", "https:/evil.example", "%0D%0A//evil.example"]


def test_a_login_never_redirects_off_site(app, org):
    failures = []
    for target in OFF_SITE:
        response = _form_login(app, target)
        location = response.headers.get("Location", "")
        if response.status_code not in (302, 303) or not _same_site(location) or \
                "evil.example" in urlsplit(location.replace("\\", "/")).netloc:
            failures.append(f"next={target}: {response.status_code} Location={location!r}")
    assert not failures, failures


def test_a_login_follows_a_same_site_next_path(app, org):
    response = _form_login(app, "/records/lead%3Fview%3Dall")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/records/lead")
