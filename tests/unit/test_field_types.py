"""Each field type's compiled check is strict, and a record's validator reports every error at once."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import pytest

from crm_platform.engine.fieldtypes import TYPES, Invalid
from crm_platform.engine.validation import RecordValidator
from crm_platform.metadata.model import Choice, FieldDef

UTC = timezone.utc
CONTRACT_TYPES = {"text", "textarea", "email", "phone", "url", "integer", "decimal", "currency", "percent",
                  "boolean", "date", "datetime", "select", "multiselect", "reference", "user", "formula",
                  "autonumber", "geo", "file"}


def field(kind: str, **options) -> FieldDef:
    if "choices" in options:
        options["choices"] = tuple(c if isinstance(c, Choice) else Choice(c, {"en": c}) for c in options["choices"])
    return FieldDef("f", kind, {"en": "F"}, **options)


def check(kind: str, value, **options):
    return TYPES[kind].check(field(kind, **options))(value)


def rejection(kind: str, value, **options) -> tuple[str, dict]:
    with pytest.raises(Invalid) as info:
        check(kind, value, **options)
    return info.value.key, info.value.params


def test_registry_holds_exactly_the_contract_types():
    assert set(TYPES) == CONTRACT_TYPES
    with pytest.raises(TypeError):
        TYPES["money"] = TYPES["currency"]


@pytest.mark.parametrize("kind", sorted(CONTRACT_TYPES - {"formula"}))
def test_none_means_unset_for_every_type(kind):
    assert check(kind, None, choices=["a"]) is None


# --- text-like ----------------------------------------------------------------------------------------

def test_text_is_stripped_and_blank_means_unset():
    assert check("text", "  Acme  ") == "Acme"
    assert check("text", "   ") is None


@pytest.mark.parametrize("value", [42, True, ["a"], {"a": 1}])
def test_text_rejects_non_strings(value):
    assert rejection("text", value) == ("type", {"expected": "text"})


def test_text_enforces_max_length_and_default_limit():
    assert check("text", "x" * 10, max_length=10) == "x" * 10
    assert rejection("text", "x" * 11, max_length=10) == ("max_length", {"max": 10})
    assert rejection("text", "x" * 256) == ("max_length", {"max": 255})


def test_text_pattern_must_match_the_whole_value():
    assert check("text", "AB-12", pattern=r"[A-Z]{2}-\d+") == "AB-12"
    assert rejection("text", "xAB-12", pattern=r"[A-Z]{2}-\d+") == ("pattern", {})


def test_textarea_keeps_whitespace():
    assert check("textarea", "  line 1\nline 2  ") == "  line 1\nline 2  "


@pytest.mark.parametrize("value", ["wei.zhang@freshmart.example", "a+b@x.co"])
def test_email_accepts_addresses(value):
    assert check("email", value) == value


@pytest.mark.parametrize("value", ["wei.zhang", "a@b", "a b@c.com", "@c.com", "a@@c.com"])
def test_email_rejects_non_addresses(value):
    assert rejection("email", value) == ("email", {})


@pytest.mark.parametrize("value, stored", [("+86 138-0013-8000", "+8613800138000"), ("(021) 5555.0101", "02155550101"),
                                           ("010-1234ext12", "0101234ext12")])
def test_phone_is_normalised(value, stored):
    assert check("phone", value) == stored


@pytest.mark.parametrize("value", ["call me", "12", "+86 138 abc"])
def test_phone_rejects_non_numbers(value):
    assert rejection("phone", value) == ("phone", {})


def test_url_needs_http_or_https_and_a_host():
    assert check("url", "https://example.com/a?b=1") == "https://example.com/a?b=1"
    for bad in ("example.com", "ftp://example.com", "https://", "javascript:alert(1)", "http://exa mple.com"):
        assert rejection("url", bad) == ("url", {}), bad


# --- numbers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["42", True, False, 4.0, 4.5])
def test_integer_is_strict(value):
    assert rejection("integer", value) == ("type", {"expected": "integer"})


def test_integer_range():
    assert check("integer", 0, min=0, max=100) == 0
    assert rejection("integer", -1, min=0) == ("min", {"min": 0})
    assert rejection("integer", 101, max=100) == ("max", {"max": 100})


def test_integer_must_fit_in_64_bits():
    assert check("integer", 2 ** 63 - 1) == 2 ** 63 - 1 and check("integer", -(2 ** 63)) == -(2 ** 63)
    assert rejection("integer", 2 ** 63) == ("max", {"max": 2 ** 63 - 1})
    assert rejection("integer", -(2 ** 63) - 1) == ("min", {"min": -(2 ** 63)})


@pytest.mark.parametrize("kind", ["decimal", "currency", "percent"])
def test_numbers_accept_json_numbers_and_numeric_strings(kind):
    assert check(kind, 12) == 12
    assert check(kind, 12.5) == 12.5
    assert check(kind, "1200.50") == 1200.5
    assert check(kind, " 7 ") == 7


def test_numbers_enforce_precision():
    assert rejection("currency", 1.005, precision=2) == ("precision", {"precision": 2})
    assert rejection("currency", "1.005", precision=2) == ("precision", {"precision": 2})
    assert rejection("decimal", 0.5, precision=0) == ("precision", {"precision": 0})
    assert check("decimal", 0.125, precision=3) == 0.125
    assert rejection("percent", 12.345) == ("precision", {"precision": 2})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "NaN", "Infinity", "-inf", "12abc", "", True, [1]])
def test_numbers_reject_non_finite_and_non_numeric(value):
    assert rejection("decimal", value) == ("type", {"expected": "number"})


def test_numbers_range():
    assert rejection("currency", -0.01, min=0) == ("min", {"min": 0})
    assert rejection("percent", "100.5", max=100) == ("max", {"max": 100})


def test_number_must_fit_its_numeric_column():
    assert check("currency", 10 ** 18 - 1, precision=2) == 10 ** 18 - 1
    for too_large in (10 ** 18, -(10 ** 18), 10 ** 30, 1e18, "1000000000000000000"):
        assert rejection("currency", too_large, precision=2) == ("too_large", {"digits": 18}), too_large
    assert rejection("decimal", 10 ** 17, precision=4) == ("too_large", {"digits": 16})


# --- booleans, dates, times ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["true", 1, 0, "yes"])
def test_boolean_is_strict(value):
    assert rejection("boolean", value) == ("type", {"expected": "boolean"})


def test_boolean_accepts_booleans():
    assert check("boolean", True) is True and check("boolean", False) is False


def test_date_is_a_real_calendar_date():
    assert check("date", "2024-02-29") == date(2024, 2, 29)
    for bad in ("2026-02-30", "2025-02-29", "2026-13-01", "20260301", "2026-3-1", "01/03/2026", 20260301):
        assert rejection("date", bad) == ("date", {}), bad


def test_date_rejects_iso_week_dates():
    assert rejection("date", "2026-W01-1") == ("date", {})


def test_datetime_needs_an_offset_and_comes_back_utc():
    value = check("datetime", "2026-03-15T09:30:00+08:00")
    assert value == datetime(2026, 3, 15, 1, 30, tzinfo=UTC)
    assert value.utcoffset().total_seconds() == 0 and value.tzinfo == UTC
    assert TYPES["datetime"].to_json(value) == "2026-03-15T01:30:00+00:00"
    assert check("datetime", "2026-03-15T01:30:00Z") == datetime(2026, 3, 15, 1, 30, tzinfo=UTC)
    for bad in ("2026-03-15T09:30:00", "2026-03-15", "2026-02-30T09:30:00+00:00", "soon", 1767225600):
        assert rejection("datetime", bad) == ("datetime", {}), bad


# --- choices, ids, geo --------------------------------------------------------------------------------

def test_select_accepts_only_its_choices():
    assert check("select", "B", choices=["A", "B"]) == "B"
    assert rejection("select", "b", choices=["A", "B"]) == ("choice", {"value": "b", "choices": "A, B"})
    assert rejection("select", ["A"], choices=["A", "B"])[0] == "choice"


def test_multiselect_is_a_list_of_choices_without_repeats():
    assert check("multiselect", ["B", "A", "B"], choices=["A", "B", "C"]) == ["B", "A"]
    assert check("multiselect", [], choices=["A"]) is None
    assert rejection("multiselect", "A", choices=["A"]) == ("type", {"expected": "choice_list"})
    assert rejection("multiselect", ["A", "Z"], choices=["A"]) == ("choice", {"value": "Z", "choices": "A"})


@pytest.mark.parametrize("kind", ["reference", "user", "file"])
def test_identifiers_are_short_strings(kind):
    assert check(kind, "0192f1a2-0000-7000-8000-000000000001") == "0192f1a2-0000-7000-8000-000000000001"
    assert rejection(kind, 17) == ("type", {"expected": "id"})
    assert rejection(kind, "x" * 37) == ("type", {"expected": "id"})


def test_geo_is_lat_lon_within_range():
    assert check("geo", {"lat": 31.2304, "lon": 121.4737}) == {"lat": 31.2304, "lon": 121.4737}
    assert check("geo", {"lat": -90, "lon": 180}) == {"lat": -90.0, "lon": 180.0}
    for bad in ({"lat": 90.01, "lon": 0}, {"lat": 0, "lon": -180.5}, {"lat": 0}, {"lat": 0, "lon": 0, "alt": 1},
                {"lat": "31", "lon": 121}, {"lat": True, "lon": 0}, {"lat": math.nan, "lon": 0}, [31, 121]):
        assert rejection("geo", bad)[0] == "type", bad


def test_geo_is_stored_in_two_columns():
    f = FieldDef("location", "geo", {"en": "Location"})
    assert [c.name for c in TYPES["geo"].columns(f)] == ["location_lat", "location_lon"]
    assert TYPES["geo"].to_row(f, {"lat": 1.0, "lon": 2.0}) == {"location_lat": 1.0, "location_lon": 2.0}
    assert TYPES["geo"].from_row(f, {"location_lat": None, "location_lon": None}) is None


def test_formula_has_no_column_and_cannot_be_written():
    f = field("formula")
    assert TYPES["formula"].columns(f) == [] and TYPES["formula"].stored is False
    with pytest.raises(AssertionError):
        TYPES["formula"].check(f)


# --- the record validator -----------------------------------------------------------------------------

def keys(errors) -> dict[str, list[str]]:
    return {name: [m.key for m in messages] for name, messages in errors.items()}


def test_validator_collects_every_value_error_at_once(catalog):
    validator = RecordValidator(catalog.entity("opportunity"))
    errors = {}
    values = validator.parse({"name": 5, "amount": "abc", "probability": 101, "expected_close_date": "2026-02-30",
                              "source": "tv", "bogus": 1, "weighted_amount": 3, "id": "x", "next_step": "ok",
                              "stage": "dreaming"}, errors)
    assert keys(errors) == {"name": ["type"], "amount": ["type"], "probability": ["max"],
                            "expected_close_date": ["date"], "source": ["choice"], "bogus": ["unknown_field"],
                            "weighted_amount": ["readonly"], "id": ["readonly"], "stage": ["stage"]}
    assert values == {"next_step": "ok"}


def test_validator_checks_required_fields_together_with_value_errors(catalog):
    validator = RecordValidator(catalog.entity("opportunity"))
    errors = {}
    values = validator.parse({"amount": -1}, errors)
    record = {"stage": "initial_contact", **values}
    validator.check(record, values, None, None, errors)
    assert keys(errors) == {"amount": ["min"], "name": ["required"], "account": ["required"],
                            "expected_close_date": ["required"], "owner": ["required"]}


def test_validator_messages_render_in_the_users_language(catalog):
    errors = {}
    RecordValidator(catalog.entity("lead")).parse({"score": 101, "email": "nope"}, errors)
    assert [m.render("en") for m in errors["score"]] == ["Must be at most 100."]
    assert [m.render("zh") for m in errors["score"]] == ["不能大于 100。"]
    assert [m.render("zh-CN") for m in errors["email"]] == ["邮箱地址无效。"]


def test_validator_rejects_a_dependent_choice_that_does_not_fit_its_parent(catalog):
    validator = RecordValidator(catalog.entity("lead"))
    errors = {}
    values = validator.parse({"region": "north_china", "city": "shanghai"}, errors)
    validator.check({"stage": "new", "name": "Li", **values}, values, None, None, errors)
    assert keys(errors) == {"city": ["dependent_choice"]}
    assert {**errors["city"][0].params, "parent": dict(errors["city"][0].params["parent"])} == \
        {"value": "shanghai", "parent": {"en": "Region", "zh": "区域"}, "parent_value": "north_china"}
