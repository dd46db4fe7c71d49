"""HTTP API: listing records — filters, search, sort, cursor and page pagination, bad queries.

``GET /api/records/{entity}`` answers ``{"data": [...], "paging": {"limit", "has_more", "next_cursor"}}``.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

URL = "/api/records"


@pytest.fixture
def rep(auth):
    return auth("rep")


def create(client, headers, entity, **fields) -> dict:
    response = client.post(f"{URL}/{entity}", json=fields, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def listing(client, headers, entity, query: str = "") -> dict:
    response = client.get(f"{URL}/{entity}?{query}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def names(page: dict) -> list[str]:
    return [r["name"] for r in page["data"]]


def bad_query(client, headers, entity, query: str) -> str:
    """The message of the 400 answer to a bad list query."""
    response = client.get(f"{URL}/{entity}?{query}", headers=headers)
    assert response.status_code == 400, (query, response.status_code, response.json)
    assert response.json["error"]["code"] == "malformed"
    assert "data" not in response.json
    return response.json["error"]["message"]


@pytest.fixture
def leads(client, rep):
    """Four leads in different stages; returned by name."""
    made = {}
    for name, company, stage in [("Ann Lee", "Acme Trading", None), ("Bo Chen", "Beta Foods", "assigned"),
                                 ("Cai Wu", None, "following_up"), ("Dan Xu", "ACME Logistics", None)]:
        lead = create(client, rep, "lead", name=name, company=company, mobile=f"1380000{len(made):04d}",
                      email=f"{name.split()[0].lower()}@example.com")
        if stage:
            response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 1, "stage": stage}, headers=rep)
            assert response.status_code == 200, response.json
            lead = response.json
        made[name] = lead
    return made


@pytest.fixture
def opportunities(client, rep):
    """Opportunities with amounts 500, 1000, 1000, 2500 and one without an amount."""
    account = create(client, rep, "account", name="Acme Ltd")
    rows = [("Echo", 1000, "12-01"), ("Alpha", 2500, "10-01"), ("Delta", None, "11-01"), ("Bravo", 1000, "09-01"),
            ("Charlie", 500, "12-15")]
    return [create(client, rep, "opportunity", name=name, account=account["id"], expected_close_date=f"2026-{day}",
                   **({"amount": amount} if amount is not None else {})) for name, amount, day in rows]


def test_a_list_is_data_plus_paging(client, rep, leads):
    page = listing(client, rep, "lead")

    assert set(page) == {"data", "paging"}
    assert page["paging"] == {"limit": 50, "has_more": False, "next_cursor": None}
    assert sorted(names(page)) == sorted(leads)
    assert page["data"][0] == leads[page["data"][0]["name"]]


def test_an_empty_list_is_an_empty_data_array(client, rep):
    assert listing(client, rep, "tender") == {"data": [], "paging": {"limit": 50, "has_more": False,
                                                                     "next_cursor": None}}


def test_filter_by_equality(client, rep, leads):
    assert names(listing(client, rep, "lead", "filter[stage]=new")) == ["Dan Xu", "Ann Lee"]
    assert names(listing(client, rep, "lead", "filter[stage][eq]=assigned")) == ["Bo Chen"]
    assert sorted(names(listing(client, rep, "lead", "filter[stage][ne]=new"))) == ["Bo Chen", "Cai Wu"]


def test_filter_by_number_range(client, rep, opportunities):
    assert sorted(names(listing(client, rep, "opportunity", "filter[amount][gte]=1000"))) == ["Alpha", "Bravo", "Echo"]
    assert names(listing(client, rep, "opportunity", "filter[amount][lt]=1000")) == ["Charlie"]
    assert sorted(names(listing(client, rep, "opportunity", "filter[amount][gt]=500&filter[amount][lte]=1000"))) == [
        "Bravo", "Echo"]


def test_contains_ignores_case(client, rep, leads):
    assert sorted(names(listing(client, rep, "lead", "filter[company][contains]=acme"))) == ["Ann Lee", "Dan Xu"]
    assert names(listing(client, rep, "lead", "filter[name][contains]=CHEN")) == ["Bo Chen"]
    assert names(listing(client, rep, "lead", "filter[company][startswith]=beta")) == ["Bo Chen"]


def test_contains_treats_wildcards_as_text(client, rep):
    create(client, rep, "lead", name="50% off")
    create(client, rep, "lead", name="500 off")

    assert names(listing(client, rep, "lead", f"filter[name][contains]={quote('50%')}")) == ["50% off"]
    assert names(listing(client, rep, "lead", "filter[name][contains]=5_0")) == []


def test_filter_by_a_list_of_values(client, rep, leads):
    page = listing(client, rep, "lead", "filter[stage][in]=assigned,following_up")

    assert sorted(names(page)) == ["Bo Chen", "Cai Wu"]


def test_filter_on_null_and_not_null(client, rep, leads):
    assert names(listing(client, rep, "lead", "filter[company][isnull]=true")) == ["Cai Wu"]
    not_null = listing(client, rep, "lead", "filter[company][isnull]=false")
    assert sorted(names(not_null)) == ["Ann Lee", "Bo Chen", "Dan Xu"]


def test_filters_on_several_fields_all_apply(client, rep, leads):
    page = listing(client, rep, "lead", "filter[stage]=new&filter[company][contains]=logistics")

    assert names(page) == ["Dan Xu"]


def test_multiselect_contains_a_value(client, rep):
    create(client, rep, "account", name="Vip One", tags=["vip", "key_account"])
    create(client, rep, "account", name="Plain", tags=["new_customer"])
    create(client, rep, "account", name="Untagged")

    assert names(listing(client, rep, "account", "filter[tags][contains]=vip")) == ["Vip One"]


def test_filter_on_a_boolean_field(client, rep):
    account = create(client, rep, "account", name="Acme Ltd")
    create(client, rep, "contact", last_name="Wu", account=account["id"], is_primary=True)
    create(client, rep, "contact", last_name="Xu", account=account["id"])

    assert [r["last_name"] for r in listing(client, rep, "contact", "filter[is_primary]=true")["data"]] == ["Wu"]


def test_filter_on_a_date(client, rep):
    account = create(client, rep, "account", name="Acme Ltd")
    for name, signed in [("Old", "2025-12-31"), ("New", "2026-01-01")]:
        create(client, rep, "contract", name=name, account=account["id"], amount=1, signed_on=signed)

    assert names(listing(client, rep, "contract", "filter[signed_on][gte]=2026-01-01")) == ["New"]


def test_search_looks_in_the_search_fields_ignoring_case(client, rep, leads):
    assert sorted(names(listing(client, rep, "lead", "q=ACME"))) == ["Ann Lee", "Dan Xu"]
    assert names(listing(client, rep, "lead", "q=bo@example")) == ["Bo Chen"]
    assert names(listing(client, rep, "lead", "q=13800000002")) == ["Cai Wu"]
    assert names(listing(client, rep, "lead", "q=nobody")) == []


def test_sort_by_several_fields(client, rep, opportunities):
    page = listing(client, rep, "opportunity", "sort=-amount,name")

    assert names(page) == ["Alpha", "Bravo", "Echo", "Charlie", "Delta"]
    assert names(listing(client, rep, "opportunity", "sort=amount,-name")) == ["Charlie", "Echo", "Bravo", "Alpha",
                                                                                 "Delta"]


def test_the_default_sort_is_the_entitys(client, rep, opportunities, leads):
    # lead: newest first; opportunity: by expected close date
    assert names(listing(client, rep, "lead")) == ["Dan Xu", "Cai Wu", "Bo Chen", "Ann Lee"]
    assert names(listing(client, rep, "opportunity")) == ["Bravo", "Alpha", "Delta", "Echo", "Charlie"]


def walk(client, headers, entity, query: str) -> list[dict]:
    pages, cursor = [], None
    while True:
        page = listing(client, headers, entity, query + (f"&cursor={cursor}" if cursor else ""))
        pages.append(page)
        assert len(pages) < 20, "the cursor never ends"
        if not page["paging"]["has_more"]:
            assert page["paging"]["next_cursor"] is None
            return pages
        cursor = page["paging"]["next_cursor"]
        assert isinstance(cursor, str) and cursor


@pytest.fixture
def many(client, rep):
    """25 leads, scores 0..24 (some repeated, some missing) so ties and NULLs cross page boundaries."""
    return [create(client, rep, "lead", name=f"Lead {i:02d}", score=None if i % 6 == 0 else i % 5)
            for i in range(25)]


@pytest.mark.parametrize("sort", ["name", "-name", "-created_at", "score,-name", "-score,name", ""])
def test_walking_the_cursor_returns_every_record_once_in_order(client, rep, many, sort):
    pages = walk(client, rep, "lead", f"limit=7&sort={sort}" if sort else "limit=7")

    assert [len(p["data"]) for p in pages] == [7, 7, 7, 4]
    assert all(p["paging"]["limit"] == 7 for p in pages)
    walked = [r["id"] for p in pages for r in p["data"]]
    everything = listing(client, rep, "lead", f"limit=200&sort={sort}" if sort else "limit=200")["data"]
    assert walked == [r["id"] for r in everything]
    assert sorted(walked) == sorted(r["id"] for r in many)


def test_the_cursor_keeps_filters(client, rep, many):
    pages = walk(client, rep, "lead", "limit=3&sort=name&filter[score][gte]=3")

    walked = [r["name"] for p in pages for r in p["data"]]
    expected = sorted(r["name"] for r in many if r["score"] is not None and r["score"] >= 3)
    assert walked == expected and len(walked) == 8


def test_page_numbers_give_offset_pages(client, rep, many):
    page = listing(client, rep, "lead", "limit=7&page=2&sort=name")

    assert names(page) == [f"Lead {i:02d}" for i in range(7, 14)]
    assert page["paging"]["page"] == 2 and page["paging"]["has_more"] is True
    last = listing(client, rep, "lead", "limit=7&page=4&sort=name")
    assert names(last) == [f"Lead {i:02d}" for i in range(21, 25)] and last["paging"]["has_more"] is False
    assert listing(client, rep, "lead", "limit=7&page=5&sort=name")["data"] == []


def test_count_gives_the_total_of_matching_records(client, rep, many):
    page = listing(client, rep, "lead", "limit=7&count=true")
    assert page["paging"]["total"] == 25 and len(page["data"]) == 7
    assert listing(client, rep, "lead", "limit=2&count=true&filter[score]=1")["paging"]["total"] == 4  # 1, 11, 16, 21
    assert "total" not in listing(client, rep, "lead", "limit=7")["paging"]


@pytest.mark.parametrize("query, named", [
    ("filter[nickname]=x", "nickname"),
    ("filter[name][like]=x", "name"),
    ("filter[score][gte]=high", "score"),
    ("filter[score]=4.5", "score"),
    ("filter[created_at][gte]=yesterday", "created_at"),
    ("filter[next_follow_up_at][lt]=2026-01-01T00:00:00", "next_follow_up_at"),
    ("filter[company][isnull]=maybe", "company"),
    ("sort=nickname", "nickname"),
    ("sort=-nickname", "nickname"),
    ("limit=0", "limit"),
    ("limit=1000", "limit"),
    ("limit=ten", "limit"),
    ("page=0", "page"),
    ("cursor=not-a-cursor", "cursor"),
    ("nickname=x", "nickname"),
])
def test_a_bad_query_is_400_naming_what_was_wrong(client, rep, leads, query, named):
    assert named in bad_query(client, rep, "lead", query)


def test_a_cursor_from_another_sort_is_refused(client, rep, many):
    cursor = listing(client, rep, "lead", "limit=7&sort=name")["paging"]["next_cursor"]

    assert "cursor" in bad_query(client, rep, "lead", f"limit=7&sort=-name&cursor={cursor}")
    assert "cursor" in bad_query(client, rep, "lead", f"limit=7&sort=name&cursor={cursor[:-3]}")


def test_a_formula_field_cannot_be_sorted_on(client, rep, opportunities):
    assert "weighted_amount" in bad_query(client, rep, "opportunity", "sort=weighted_amount")


@pytest.mark.parametrize("value", ["' OR 1=1 --", "'; DROP TABLE lead; --", "\" OR \"\"=\"", "%", "_"])
def test_a_filter_value_that_looks_like_sql_is_just_data(client, rep, leads, value):
    for query in (f"filter[name]={quote(value)}", f"filter[name][contains]={quote(value)}", f"q={quote(value)}"):
        assert listing(client, rep, "lead", query)["data"] == [], query
    assert len(listing(client, rep, "lead")["data"]) == 4


def test_a_list_of_an_unknown_entity_is_404(client, rep):
    response = client.get(f"{URL}/nothing_{uuid.uuid4().hex[:6]}", headers=rep)

    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_lists_carry_formulas(client, rep, opportunities):
    page = listing(client, rep, "opportunity", "filter[name]=Alpha")

    assert page["data"][0]["weighted_amount"] == 250
