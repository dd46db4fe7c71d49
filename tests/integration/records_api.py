"""One user's record calls through the Flask test client, for tests that speak HTTP: each helper
asserts the status a success has, and returns the JSON the user would see."""

from __future__ import annotations

URL = "/api/records"


def post(client, who, entity, body, extra=None):
    return client.post(f"{URL}/{entity}", json=body, headers={**who, **(extra or {})})


def create(client, who, entity, **fields) -> dict:
    response = post(client, who, entity, fields)
    assert response.status_code == 201, response.json
    return response.json


def patch(client, who, entity, record, extra=None, **fields):
    return client.patch(f"{URL}/{entity}/{record['id']}", json={"version": record["version"], **fields},
                        headers={**who, **(extra or {})})


def updated(client, who, entity, record, **fields) -> dict:
    response = patch(client, who, entity, record, **fields)
    assert response.status_code == 200, response.json
    return response.json


def read(client, who, entity, record_id) -> dict:
    response = client.get(f"{URL}/{entity}/{record_id}", headers=who)
    assert response.status_code == 200, response.json
    return response.json


def invalid(response) -> dict[str, list[str]]:
    """The field errors of a 422."""
    assert response.status_code == 422, (response.status_code, response.json)
    assert response.json["error"]["code"] == "validation"
    return response.json["error"]["fields"]
