"""The expression language: checked once, compiled once, evaluated like a spreadsheet formula."""

from __future__ import annotations

import ast
import builtins
import datetime as dt
import time
import types
from decimal import Decimal

import pytest
import simpleeval

from crm_platform.metadata.errors import ExpressionError, ExpressionLimitError
from crm_platform.metadata.expressions import (
    FUNCTIONS,
    MAX_SOURCE_LENGTH,
    USER_ATTRS,
    Expression,
    compile_expression,
)

UTC = dt.timezone.utc
NAMES = frozenset({
    "id", "owner", "stage", "created_at", "amount", "probability", "name", "tags", "close_date",
    "bid_deadline", "discount", "quantity", "notes", "title",
})
NUMERIC = frozenset({"amount", "probability", "discount", "quantity"})
RECORD = {
    "id": 7, "owner": "alice", "stage": "won", "amount": 1000, "probability": 40, "name": "Acme Corp",
    "tags": ["hot", "vip"], "close_date": dt.date(2024, 3, 15), "bid_deadline": dt.date(2024, 4, 1),
    "created_at": dt.datetime(2024, 1, 1, 9, 30, tzinfo=UTC), "discount": 2.5, "quantity": 3,
    "notes": "   ", "title": "x",
}


def ev(source: str, record: dict | None = None, old=None, user=None, names=NAMES):
    return compile_expression(source, names, numeric_names=NUMERIC).evaluate(
        RECORD if record is None else record, old, user)


def error_of(source: str, names=NAMES) -> str:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source, names)
    return str(info.value)


# --- formulas and values ------------------------------------------------------------------------------

def test_weighted_amount_formula_multiplies_fields():
    assert ev("amount * probability / 100", {"amount": 2500, "probability": 40}) == 1000


def test_numeric_formula_compiles_to_plain_operators_without_guard_calls():
    expr = compile_expression("amount * probability / 100", NAMES, numeric_names=NUMERIC)
    assert not {"_mul", "_add", "_pow", "_mod"} & set(expr.evaluate.__code__.co_names)
    unknown_types = compile_expression("amount * probability / 100", NAMES)
    assert "_mul" in unknown_types.evaluate.__code__.co_names


def test_evaluate_is_the_compiled_function_itself_without_builtins():
    expr = compile_expression("amount + 1", NAMES)
    assert isinstance(expr.evaluate, types.FunctionType)
    assert expr.evaluate.__globals__["__builtins__"] == {}
    assert expr.evaluate({"amount": 1}) == 2


def test_evaluation_never_parses_or_compiles_again(monkeypatch):
    expr = compile_expression("amount * probability / 100 if stage == 'won' else 0", NAMES)

    def forbidden(*args, **kwargs):
        raise AssertionError("evaluation must not parse or compile")

    monkeypatch.setattr(ast, "parse", forbidden)
    monkeypatch.setattr(builtins, "compile", forbidden)
    assert expr.evaluate(RECORD) == 400


def test_expression_reports_the_names_it_reads():
    expr = compile_expression("amount > old.amount and user.role == 'admin' or stage == old.stage", NAMES)
    assert expr == Expression(expr.source, frozenset({"amount", "stage"}), frozenset({"amount", "stage"}),
                              frozenset({"role"}), expr.evaluate)
    assert expr.names == {"amount", "stage"}
    assert expr.old_names == {"amount", "stage"}
    assert expr.user_attrs == {"role"}


def test_expression_is_immutable():
    expr = compile_expression("1", NAMES)
    with pytest.raises(AttributeError):
        expr.source = "2"  # type: ignore[misc]


def test_missing_field_reads_as_none():
    assert ev("amount", {}) is None
    assert ev("amount is None", {}) is True


def test_record_may_be_any_mapping():
    assert ev("amount * 2", types.MappingProxyType({"amount": 4})) == 8
    assert ev("amount", types.MappingProxyType({})) is None


def test_null_propagates_to_none():
    assert ev("amount * 3", {"amount": None}) is None
    assert ev("amount / 0", {"amount": 5}) is None
    assert ev("amount > 3", {}) is None
    assert ev("upper(name) + '!'", {}) is None
    assert ev("(-8) ** 0.5") is None  # a complex number is not a value


def test_failing_operand_of_or_does_not_hide_the_other():
    assert ev("amount > 1000 or stage == 'lost'", {"stage": "lost"}) is True
    assert ev("amount > 1000 or stage == 'lost'", {"stage": "open"}) is False
    assert ev("amount > 1000 and stage == 'lost'", {"stage": "lost"}) is None


def test_if_else_with_failing_condition_takes_the_else_branch():
    assert ev("'big' if amount > 1000 else 'small'", {}) == "small"
    assert ev("'big' if amount > 1000 else 'small'", {"amount": 5000}) == "big"


def test_coalesce_absorbs_a_failing_argument():
    assert ev("coalesce(amount / quantity, 0)", {"amount": 10, "quantity": 0}) == 0
    assert ev("coalesce(amount / quantity, 0)", {"amount": 10, "quantity": 4}) == 2.5


def test_old_values_are_readable_on_update():
    expr = compile_expression("stage != old.stage and old.stage == 'open'", NAMES)
    assert expr.evaluate({"stage": "won"}, {"stage": "open"}) is True
    assert expr.evaluate({"stage": "won"}, {"stage": "won"}) is False


def test_old_is_none_on_create_so_old_fields_read_as_none():
    assert ev("old.stage", {"stage": "won"}) is None
    assert ev("old.stage != stage", {"stage": "won"}) is True
    assert ev("old.amount", {}, old={}) is None


def test_user_attributes_are_readable():
    user = {"id": 3, "username": "bob", "role": "sales", "team": "emea"}
    assert ev("user.role == 'sales' and user.team == 'emea'", {}, user=user) is True
    assert ev("owner == user.username", {"owner": "bob"}, user=user) is True
    assert ev("user.role", {}) is None
    assert USER_ATTRS == {"id", "username", "role", "team"}


def test_compare_chains_membership_and_literals():
    assert ev("stage in ('won', 'lost')") is True
    assert ev("stage not in ['won']") is False
    assert ev("100 < amount <= 1000") is True
    assert ev("'hot' in tags") is True
    assert ev("owner is not None and notes is not None") is True


# --- names, functions and constructs ------------------------------------------------------------------

def test_unknown_name_suggests_closest_field():
    assert error_of("amout * 2") == "unknown name 'amout' (did you mean 'amount'?)"


def test_unknown_name_without_a_close_field_has_no_suggestion():
    assert error_of("zzzzzz") == "unknown name 'zzzzzz'"


def test_unknown_old_field_is_refused():
    assert error_of("old.amout") == "unknown name 'old.amout' (did you mean 'old.amount'?)"


def test_unknown_function_is_refused():
    assert error_of("foo(amount)") == "unknown function 'foo'"
    assert "did you mean 'days_between'" in error_of("days_betwen(today(), close_date)")


def test_user_attribute_outside_allow_list_is_refused():
    assert error_of("user.salary > 3").startswith("'user' has no attribute 'salary'")


def test_bare_old_and_user_are_refused():
    assert "old.<field>" in error_of("old")
    assert "user.<attribute>" in error_of("user == 3")


def test_wrong_number_of_arguments_is_a_compile_error():
    assert error_of("days_between(close_date)") == \
        "wrong number of arguments for days_between(a, b): got 1"
    assert "round(x, n=0)" in error_of("round(1, 2, 3)")
    compile_expression("coalesce(notes, name, title, owner)", NAMES)


def test_attribute_access_is_only_for_old_and_user():
    for source in ("amount.__class__", "().__class__", "name.upper()", "'x'.join(tags)", "old.stage.lower()"):
        assert "not allowed: attribute access" in error_of(source), source


def test_dunder_and_builtins_are_unreachable():
    assert "dunder" in error_of("__import__('os')")
    assert error_of("open('x')") == "unknown function 'open'"
    assert error_of("eval('1')") == "unknown function 'eval'"
    assert "dunder" in error_of("old.__class__")
    assert "dunder" in error_of("__builtins__", names=NAMES | {"__builtins__"})
    assert error_of("getattr(amount, 'real')") == "unknown function 'getattr'"


@pytest.mark.parametrize(("source", "construct"), [
    ("lambda: 1", "lambda"),
    ("[x for x in tags]", "list comprehension"),
    ("(x for x in tags)", "generator expression"),
    ("{x for x in tags}", "set comprehension"),
    ("f'{name}'", "f-string"),
    ("(x := 1)", "walrus"),
    ("tags[0]", "subscript"),
    ("amount << 2", "'<<'"),
    ("amount | 1", "'|'"),
    ("amount & 1", "'&'"),
    ("amount ^ 1", "'^'"),
    ("~amount", "'~'"),
    ("{'a': 1}", "dict literal"),
    ("{1, 2}", "set literal"),
    ("round(amount, n=2)", "keyword arguments"),
    ("max(*tags)", "'*' unpacking"),
    ("[*tags]", "'*' unpacking"),
    ("(lambda: 1)()", "calling anything but a library function"),
    ("b'x'", "bytes constant"),
    ("1j", "complex constant"),
    ("...", "ellipsis constant"),
    ("'%s' % name", "'%' formatting"),
])
def test_disallowed_constructs_are_refused_by_name(source, construct):
    message = error_of(source)
    assert message.startswith("not allowed: ") and construct in message, message


def test_is_only_compares_with_none_true_or_false():
    assert "use == instead" in error_of("stage is 'won'")
    assert "use == instead" in error_of("amount is quantity")
    assert ev("stage is not None") is True


def test_syntax_error_reports_the_column():
    assert error_of("amount + * 2") == "invalid syntax at column 10: invalid syntax"
    assert error_of("amount *").startswith("invalid syntax at the end")
    assert error_of("(1 +\n 2 +)").startswith("invalid syntax at line 2")


def test_empty_or_non_string_expression_is_refused():
    assert error_of("   ") == "expression is empty"
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(42, NAMES)  # type: ignore[arg-type]


def test_nul_character_is_a_clear_error():
    assert error_of("amount\x00").startswith("invalid syntax")


# --- resource guards ----------------------------------------------------------------------------------

def test_too_long_expression_is_refused():
    source = "1 + " * 600 + "1"
    assert error_of(source) == f"expression is too long ({len(source)} characters, at most {MAX_SOURCE_LENGTH})"


@pytest.mark.parametrize("source", [
    "(" * 500 + "1" + ")" * 500,
    "-" * 10000 + "1",
    "not " * 5000 + "x",
    "-" * 1999 + "1",
    "not " * 400 + "x",
    "abs(" * 40 + "1" + ")" * 40,
    "[" * 100 + "]" * 100,
    "amount + " * 220 + "amount",
])
def test_deep_nesting_is_a_clear_error_not_a_crash(source):
    started = time.perf_counter()
    message = error_of(source)
    assert "nested too deeply" in message or "too long" in message, message
    assert time.perf_counter() - started < 2


def test_nesting_within_the_limit_compiles():
    assert ev("-" * 30 + "1") == 1
    assert ev("abs(" * 20 + "-1" + ")" * 20) == 1


def test_huge_power_is_refused_with_limit_error():
    for source in ("9**9**9", "2 ** 65", "10 ** 64 ** 2", "amount ** 1000"):
        started = time.perf_counter()
        with pytest.raises(ExpressionLimitError):
            ev(source, {"amount": 10 ** 50})
        assert time.perf_counter() - started < 1, source


def test_reasonable_powers_work():
    assert ev("2 ** 10") == 1024
    assert ev("2 ** -1") == 0.5
    assert ev("amount * 1.05 ** 2", {"amount": 100}) == pytest.approx(110.25)
    assert ev("1.5 ** 100000") is None  # float overflow is a null, not a hang


def test_string_repetition_bomb_is_refused():
    for source, record in [("'x' * 10**9", {}), ("[1] * 10**9", {}), ("10**9 * (1, 2)", {}),
                           ("name * quantity", {"name": "ab", "quantity": 10 ** 9}),
                           ("title * 100000", {"title": "xy"})]:
        with pytest.raises(ExpressionLimitError, match="repetition"):
            ev(source, record)


def test_string_repetition_within_limit_works():
    assert ev("'ab' * 3") == "ababab"
    assert ev("title * 100000", {"title": "x"}) == "x" * 100_000


def test_concatenation_bomb_is_refused():
    source = " + ".join(["'x' * 100000"] * 11)
    with pytest.raises(ExpressionLimitError, match="concatenation"):
        ev(source)


def test_percent_on_text_values_is_null_not_a_format_bomb():
    assert ev("notes % 1", {"notes": "%0999999999d"}) is None
    assert ev("amount % 7") == 1000 % 7


def test_limit_error_is_not_swallowed_into_none():
    for source in ("stage == 'won' and 'x' * 10**9", "coalesce(9**9**9, 1)", "1 if 2 ** 100 else 0",
                   "is_blank('x' * 10**9) or True"):
        with pytest.raises(ExpressionLimitError):
            ev(source)


# --- the function library -----------------------------------------------------------------------------

def test_functions_mapping_is_read_only():
    assert isinstance(FUNCTIONS, types.MappingProxyType)
    with pytest.raises(TypeError):
        FUNCTIONS["open"] = open  # type: ignore[index]


def test_today_and_now_are_utc():
    assert ev("today()") == dt.datetime.now(UTC).date()
    moment = ev("now()")
    assert moment.tzinfo is not None and moment.utcoffset() == dt.timedelta(0)
    assert abs(moment - dt.datetime.now(UTC)) < dt.timedelta(seconds=5)


def test_days_between_mixes_dates_and_datetimes():
    record = {"close_date": dt.date(2024, 3, 1), "created_at": dt.datetime(2024, 2, 20, 23, 59)}
    assert ev("days_between(created_at, close_date)", record) == 10
    assert ev("days_between(close_date, created_at)", record) == -10
    assert ev("days_between(close_date, bid_deadline)", record) is None
    tokyo = dt.timezone(dt.timedelta(hours=9))
    record = {"created_at": dt.datetime(2024, 3, 2, 5, 0, tzinfo=tokyo), "close_date": dt.date(2024, 3, 2)}
    assert ev("days_between(created_at, close_date)", record) == 1  # 2024-03-01 20:00 UTC
    assert ev("days_between('2024-01-01', close_date)", record) == 61


def test_days_since_and_add_days():
    ten_days_ago = dt.datetime.now(UTC).date() - dt.timedelta(days=10)
    assert ev("days_since(close_date)", {"close_date": ten_days_ago}) == 10
    assert ev("add_days(close_date, 30)", {"close_date": dt.date(2024, 1, 15)}) == dt.date(2024, 2, 14)
    moment = dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert ev("add_days(created_at, -1)", {"created_at": moment}) == moment - dt.timedelta(days=1)
    assert ev("add_days(close_date, 10**12)", {"close_date": dt.date(2024, 1, 1)}) is None
    assert ev("add_days(close_date, 1)", {}) is None


def test_year_and_month_read_dates():
    assert ev("year(close_date) * 100 + month(close_date)") == 202403
    assert ev("year(close_date)", {}) is None


def test_is_blank_and_coalesce_treat_empty_as_missing():
    assert [ev(f"is_blank({v})") for v in ("None", "''", "'  '", "[]", "()", "0", "'x'", "[0]")] == \
        [True, True, True, True, True, False, False, False]
    assert ev("coalesce(notes, '', name)") == "Acme Corp"
    assert ev("coalesce(notes, None)") is None


def test_text_functions_tolerate_none():
    assert ev("len(name)") == 9
    assert ev("len(name)", {}) == 0
    assert ev("lower(name)") == "acme corp"
    assert ev("upper(name)", {}) is None
    assert ev("contains(name, 'Acme')") is True
    assert ev("contains(tags, 'vip')") is True
    assert ev("contains(name, 'acme')") is False
    assert ev("contains(name, 'x')", {}) is False


def test_round_is_half_away_from_zero_like_a_spreadsheet():
    assert ev("round(2.5)") == 3 and isinstance(ev("round(2.5)"), int)
    assert ev("round(-2.5)") == -3
    assert ev("round(2.675, 2)") == Decimal("2.68")  # the literal 2.675 is a Decimal: exact
    assert ev("round(1234, -2)") == 1200
    assert ev("round(amount, 1)", {"amount": Decimal("1.25")}) == Decimal("1.3")
    assert ev("round(amount, 2)", {}) is None


def test_min_max_ignore_none():
    assert ev("min(amount, discount, quantity)") == 2.5
    assert ev("max(amount, discount, quantity)", {"discount": 5}) == 5
    assert ev("min(amount, quantity)", {}) is None
    assert ev("max(tags)") == "vip"
    assert ev("min(amount / 0, 3)") == 3


def test_abs():
    assert ev("abs(discount - amount)") == 997.5
    assert ev("abs(amount)", {}) is None


# --- differential: same results as simpleeval itself --------------------------------------------------

DIFFERENTIAL = [
    "amount * probability / 100",
    "amount - discount * quantity",
    "amount // 7 + amount % 7",
    "2 ** 10 - quantity ** 2",
    "-amount + +quantity",
    "amount > 500 and stage == 'won'",
    "amount < 500 or stage",
    "stage in ('won', 'lost')",
    "stage not in ['open']",
    "'hot' in tags",
    "100 < amount <= 1000",
    "'big' if amount >= 1000 else 'small'",
    "name + ' (' + owner + ')'",
    "not is_blank(name)",
    "is_blank(notes)",
    "coalesce(notes, name)",
    "len(tags) + len(name)",
    "upper(owner) == 'ALICE'",
    "contains(name, 'Acme')",
    "round(amount * probability / 100 / 3, 2)",
    "min(amount, discount, quantity)",
    "max(tags)",
    "abs(discount - amount)",
    "days_between(close_date, bid_deadline)",
    "year(close_date) * 100 + month(created_at)",
    "add_days(close_date, 17) == bid_deadline",
    "stage == 'won' or amount / 0 > 1",
    "owner is not None",
    "[1, 2] + [quantity]",
    "'ab' * quantity",
    "round(2.5) + round(-2.5)",
    "not (amount == 1000) or id == 7",
]


@pytest.mark.parametrize("source", DIFFERENTIAL)
def test_results_match_simpleeval(source):
    expected = simpleeval.EvalWithCompoundTypes(names=dict(RECORD), functions=dict(FUNCTIONS)).eval(source)
    assert ev(source) == expected
    assert type(ev(source)) is type(expected)


# --- exact numbers: Decimal amounts, decimal literals, floats mixed in --------------------------------

def test_a_literal_with_a_fraction_is_the_exact_decimal_of_its_text():
    assert ev("amount * 0.13", {"amount": Decimal("12345678901234.56")}) == Decimal("1604938257160.4928")
    assert ev("0.1 + 0.2 == 0.3") is True
    assert ev("amount * 0.1000000000000000000001", {"amount": 1}) == Decimal("0.1000000000000000000001")
    assert ev("1e3 + amount", {"amount": 1}) == Decimal(1001)


def test_decimal_arithmetic_keeps_decimals():
    record = {"amount": Decimal("1250000.50"), "probability": Decimal("40.00")}
    assert ev("amount * probability / 100", record) == Decimal("500000.2")
    assert type(ev("amount * probability / 100", record)) is Decimal
    assert ev("amount - probability", record) == Decimal("1249960.50")
    assert ev("amount // 3 + amount % 3", record) == Decimal("416666") + Decimal("2.50")


def test_a_float_mixed_with_a_decimal_is_computed_exactly_instead_of_failing():
    assert ev("amount * 0.13", {"amount": 1000.5}) == Decimal("130.065")
    assert ev("amount + discount", {"amount": Decimal("1.10"), "discount": 2.2}) == Decimal("3.30")
    assert ev("quantity / 4 * amount", {"quantity": 3, "amount": Decimal("10.00")}) == Decimal("7.5")
    assert ev("coalesce(amount, 0) * discount", {"amount": Decimal("1.1"), "discount": 2.2}) == Decimal("2.42")
    assert ev("amount > 5 or discount * amount", {"amount": Decimal("1.1"), "discount": 2.2}) == Decimal("2.42")
    assert ev("discount ** amount", {"amount": Decimal("2"), "discount": 1.5}) == Decimal("2.25")


def test_decimal_division_by_zero_is_still_none():
    for source in ("amount / 0", "amount // 0", "amount % 0", "0 * amount / (amount - amount)"):
        assert ev(source, {"amount": Decimal("12.50")}) is None, source
    assert ev("min(amount / 0, 3)", {"amount": Decimal(1)}) == 3


def test_a_decimal_power_beyond_a_floats_range_is_none_not_a_huge_number():
    assert ev("amount ** 2", {"amount": Decimal("1.5")}) == Decimal("2.25")
    assert ev("1.5 ** 100000") is None
    assert ev("amount ** 1000000000", {"amount": Decimal("1.01")}) is None


def test_library_functions_are_decimal_safe():
    record = {"amount": Decimal("2.675"), "discount": 2.5, "quantity": 3}
    assert ev("round(amount, 2)", record) == Decimal("2.68") and type(ev("round(amount, 2)", record)) is Decimal
    assert ev("round(amount)", record) == 3 and type(ev("round(amount)", record)) is int
    assert ev("round(amount * 1000, -2)", record) == 2700
    assert ev("min(amount, discount, quantity)", record) == 2.5
    assert ev("max(amount, discount, quantity)", record) == 3
    assert ev("max(amount, 2.6)", record) == Decimal("2.675")
    assert ev("abs(discount - amount)", record) == Decimal("0.175")
    assert ev("coalesce(amount, 0)", {}) == 0
    assert ev("add_days(close_date, amount)", {**record, "close_date": dt.date(2024, 1, 1)}) == dt.date(2024, 1, 3)


def test_the_fast_path_stays_plain_operators_and_the_exact_twin_is_compiled_once():
    expr = compile_expression("amount * 0.13", NAMES, numeric_names=NUMERIC)
    assert not {"_mul", "_add", "_pow", "_mod", "_xmult"} & set(expr.evaluate.__code__.co_names)
    assert expr.evaluate.__globals__["_xexpr"] is not expr.evaluate


DECIMAL_DIFFERENTIAL = [
    "amount * 0.13",
    "amount * probability / 100",
    "round(amount * 1.07, 2)",
    "amount - discount * quantity",
    "max(amount * 0.5, 100)",
    "amount > 999.99",
    "'big' if amount * 1.5 >= 1500 else 'small'",
]


@pytest.mark.parametrize("source", DECIMAL_DIFFERENTIAL)
def test_decimal_results_match_simpleeval_up_to_float_rounding(source):
    """simpleeval, given floats, computes in binary floating point; the compiled expression, given the
    same values as Decimals, computes exactly. They agree up to the float's rounding."""
    exact = {**RECORD, "amount": Decimal("1000.10"), "probability": Decimal("40"), "discount": Decimal("2.5")}
    floats = {k: float(v) if isinstance(v, Decimal) else v for k, v in exact.items()}
    expected = simpleeval.EvalWithCompoundTypes(names=floats, functions=dict(FUNCTIONS)).eval(source)
    got = ev(source, exact)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert isinstance(got, (int, Decimal)) and float(got) == pytest.approx(expected, rel=1e-15)
    else:
        assert got == expected
