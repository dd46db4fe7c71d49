"""Built-in messages are fully translated: no English inside Chinese, and fields, stages and entities are
named by their labels in the caller's language (over HTTP, on SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import string

import pytest

from crm_platform.engine.messages import ACTIONS, EXPECTED, OBJECTS, TEMPLATES, Message

URL = "/api/records"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
LABEL = {"en": "Label", "zh": "标签"}
DATA = "12345"  # user data (a value sent, an id): rendered as it is, so kept free of letters here

#: A sample for every parameter a template uses: labels as locale maps, platform words by key, user data.
SAMPLES = {
    "expected": "integer", "action": ("convert",), "entity": LABEL, "target": LABEL, "other": LABEL,
    "stage": LABEL, "old": LABEL, "new": {"en": "Next", "zh": "下一步"}, "allowed": (LABEL, LABEL),
    "parent": LABEL, "fields": (LABEL, LABEL), "field": LABEL, "detail": Message("required"), "roles": (LABEL, LABEL),
    "value": DATA, "parent_value": DATA, "choices": DATA, "id": DATA, "op": DATA, "operators": DATA,
    "name": DATA, "pointer": "/12/3", "line": 1, "column": 2,
    "max": 10, "min": 0, "digits": 18, "precision": 2, "minutes": 15, "sent": 1, "current": 2,
    "request_id": DATA, "method": "POST", "status": 405,
}
#: Literal tokens a client must type exactly as written, and names of standards: the only ASCII words a
#: Chinese message may contain (formats, headers and media types, JSON keys and literals, query
#: parameters, the upload's form field, encodings, units).
PROTOCOL_TOKENS = ("http://", "https://", "YYYY-MM-DD", "ISO 8601", "If-Match", "Content-Type: application/json",
                   "multipart/form-data", '"version"', '"owner"', '"lat"', '"lon"', "true", "false", "null",
                   "limit", "page", "cursor", "entity", "action", " file ", "JSON", "UTF-8", "UTF-16", "NUL", "MiB",
                   "HTTP", "POST")


def latin_words(text: str) -> list[str]:
    for token in PROTOCOL_TOKENS:
        text = text.replace(token, "")
    return re.findall(r"[A-Za-z]+", text)


def used_params(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# --- every template, data-driven ----------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_reads_fully_in_chinese_with_labels(key):
    texts = TEMPLATES[key]
    assert set(texts) >= {"en", "zh"}
    assert used_params(texts["zh"]) <= used_params(texts["en"])  # zh may leave out an English-only detail
    missing = used_params(texts["en"]) - set(SAMPLES)
    assert not missing, f"give SAMPLES a value for {missing}"
    params = {name: SAMPLES[name] for name in used_params(texts["en"])}
    zh = Message(key, params).render("zh")
    assert latin_words(zh) == [], zh
    assert not re.search(r"\{[a-z_]+(![rs])?\}", zh), zh  # every placeholder filled
    en = Message(key, params).render("en")
    assert "标签" not in en and "Label" not in zh


@pytest.mark.parametrize("table", [EXPECTED, ACTIONS, OBJECTS], ids=["expected", "actions", "objects"])
def test_every_translated_word_has_chinese_without_english(table):
    for word, texts in table.items():
        assert set(texts) >= {"en", "zh"}, word
        assert latin_words(texts["zh"]) == [], (word, texts["zh"])


@pytest.mark.parametrize("expected", sorted(EXPECTED))
def test_a_type_error_names_what_is_expected_in_the_callers_language(expected):
    message = Message("type", {"expected": expected})
    assert message.render("zh") == f"必须是{EXPECTED[expected]['zh']}。"
    assert message.render("en") == f"Must be {EXPECTED[expected]['en']}."


@pytest.mark.parametrize("key", sorted(TEMPLATES))
@pytest.mark.parametrize("locale", ["zh", "zh-Hans-CN", "fr", "", "en_US", None])
def test_rendering_never_raises_whatever_is_missing(key, locale):
    assert isinstance(Message(key).render(locale), str)
    assert isinstance(Message(key, {name: None for name in SAMPLES}).render(locale), str)


def test_a_definitions_own_text_falls_back_to_english_then_to_any_text():
    both = Message("custom", {"text": {"en": "Too late.", "zh": "太晚了。"}})
    assert (both.render("zh-CN"), both.render("fr"), both.render()) == ("太晚了。", "Too late.", "Too late.")
    assert Message("custom", {"text": {"zh": "太晚了。"}}).render("en") == "太晚了。"
    assert Message("custom", {"text": {}}).render("zh") == "记录不符合业务规则。"
    assert Message("custom").render("en") == "The record does not meet a rule of its definition."
    assert Message("no_such_key", {"x": 1}).render("zh") == "no_such_key"


# --- over HTTP ----------------------------------------------------------------------------------------

@pytest.fixture
def rep(auth):
    return auth("rep")


def fields_of(response, status=422) -> dict:
    assert response.status_code == status, (response.status_code, response.json)
    return response.json["error"]["fields"]


def created(response) -> dict:
    assert response.status_code == 201, response.json
    return response.json


def test_a_type_error_reads_fully_in_chinese(client, rep):
    response = client.post(f"{URL}/lead", json={"name": "Li", "score": "high"}, headers={**rep, **ZH})
    assert fields_of(response) == {"score": ["必须是整数。"]}
    assert response.json["error"]["message"] == "记录包含无效字段。"
    response = client.post(f"{URL}/lead", json={"name": "Li", "score": "high"}, headers=rep)
    assert fields_of(response) == {"score": ["Must be an integer."]}


def test_a_gate_required_error_names_the_stage_by_its_chinese_label(client, rep):
    tender = created(client.post(f"{URL}/tender", json={"title": "Metro line 5"}, headers=rep))
    response = client.patch(f"{URL}/tender/{tender['id']}", json={"version": 1, "stage": "bidding"},
                            headers={**rep, **ZH})
    assert fields_of(response) == {"budget": ["进入阶段「投标中」时必填。"], "bid_deadline": ["进入阶段「投标中」时必填。"]}
    response = client.patch(f"{URL}/tender/{tender['id']}", json={"version": 1, "stage": "bidding"}, headers=rep)
    assert fields_of(response)["budget"] == ["Required to enter stage 'Bidding'."]


def test_a_transition_error_names_both_stages_by_their_chinese_labels(client, rep):
    lead = created(client.post(f"{URL}/lead", json={"name": "Li"}, headers=rep))
    lead = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 1, "stage": "following_up"}, headers=rep).json
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 2, "stage": "new"}, headers={**rep, **ZH})
    assert fields_of(response) == {"stage": ["不能从阶段「跟进中」转到「新线索」。"]}
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 2, "stage": "new"}, headers=rep)
    assert fields_of(response) == {"stage": ["Cannot move from stage 'Following up' to 'New'."]}


def test_stage_entry_and_action_only_errors_read_in_chinese(client, rep):
    response = client.post(f"{URL}/tender", json={"title": "Metro", "stage": "won"}, headers={**rep, **ZH})
    assert fields_of(response) == {"stage": ["新建的标讯不能直接处于阶段「中标」（可用的起始阶段：跟踪中）。"]}
    lead = created(client.post(f"{URL}/lead", json={"name": "Li"}, headers=rep))
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 1, "stage": "converted"},
                            headers={**rep, **ZH})
    assert fields_of(response) == {"stage": ["阶段「已转化」只能通过转化操作进入。"]}
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"version": 1, "stage": "converted"}, headers=rep)
    assert fields_of(response) == {"stage": ["Stage 'Converted' is set by the convert action."]}
    assert client.get(f"{URL}/lead/{lead['id']}", headers=rep).json["stage"] == "new"
