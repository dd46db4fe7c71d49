"""The entity description is encoded once per catalog version and role, then served as bytes with an
ETag — and stays exactly the caller's view: per role, never shown without a token."""

from __future__ import annotations

from crm_platform.web.describe import DescriptionCache

URL = "/api/meta/entities/opportunity"


def names(response) -> set[str]:
    return {f["name"] for f in response.json["fields"]}


def test_the_description_comes_with_an_etag_and_a_matching_if_none_match_gets_304(client, auth):
    first = client.get(URL, headers=auth("rep"))
    assert first.status_code == 200 and first.mimetype == "application/json"
    etag = first.headers["ETag"]
    again = client.get(URL, headers={**auth("rep"), "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    stale = client.get(URL, headers={**auth("rep"), "If-None-Match": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.data == first.data and stale.headers["ETag"] == etag


def test_a_cached_description_is_still_each_roles_own(client, auth):
    rep = client.get(URL, headers=auth("rep"))
    admin = client.get(URL, headers=auth("admin"))
    rep_again = client.get(URL, headers=auth("rep"))
    assert {"cost", "margin"} & names(rep) == set() and {"cost", "margin"} <= names(admin)
    assert rep_again.data == rep.data and rep_again.headers["ETag"] == rep.headers["ETag"]
    assert admin.headers["ETag"] != rep.headers["ETag"]
    assert rep.json["actions"]["read"] == "own" and admin.json["actions"]["read"] == "all"


def test_another_roles_etag_does_not_revalidate_a_reps_description(client, auth):
    admin_etag = client.get(URL, headers=auth("admin")).headers["ETag"]
    rep = client.get(URL, headers={**auth("rep"), "If-None-Match": admin_etag})
    assert rep.status_code == 200 and "cost" not in names(rep)


def test_a_cached_description_still_needs_a_token(client, auth):
    assert client.get(URL, headers=auth("rep")).status_code == 200
    response = client.get(URL)
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"
    assert client.get(URL, headers={"If-None-Match": "*"}).status_code == 401


def test_an_entity_the_role_cannot_see_is_404_before_and_after_others_were_cached(client, auth):
    assert client.get("/api/meta/entities/opportunity", headers=auth("admin")).status_code == 200
    response = client.get("/api/meta/entities/payment", headers=auth("marketing"))
    assert (response.status_code, response.json["error"]["code"]) == (404, "not_found")


def test_the_cache_builds_once_per_version_role_and_entity_and_forgets_old_versions():
    cache, built = DescriptionCache(), []

    def build(text):
        return lambda: built.append(text) or text.encode()

    body, etag = cache.get("v1", "rep", "lead", build("rep v1"))
    assert cache.get("v1", "rep", "lead", build("again")) == (body, etag) and built == ["rep v1"]
    assert cache.get("v1", "admin", "lead", build("admin v1"))[0] == b"admin v1"
    assert cache.get("v2", "rep", "lead", build("rep v2"))[0] == b"rep v2"
    assert built == ["rep v1", "admin v1", "rep v2"] and set(cache.entries) == {("v2", "rep", "lead")}
    assert etag.startswith('"') and etag.endswith('"') and etag != cache.get("v2", "rep", "lead", build("x"))[1]
