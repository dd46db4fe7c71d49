"""One meaning for blank values: the SQL that ``engine/sqlexpr.py`` makes of a condition selects exactly
the records for which the Python evaluator (``metadata/expressions.py``) finds it true, on SQLite and
PostgreSQL.

The records live in a small table whose columns are made by the platform's own field types (text,
select, integer, currency, boolean, user ids, multiselect, date), so the storage is the real one:
amounts as text keys on SQLite, JSON lists, booleans. On PostgreSQL the text columns get a linguistic
collation (ICU English), as a database created with ``en_US.UTF-8`` would have, so ordering text in
SQL is put to the test against Python's code-point order.

Hypothesis writes conditions in the SQL-translatable subset and records with blanks; each example is
inserted and the selected set is compared with Python's. ``CRM_SEMANTICS_EXAMPLES=2000`` runs longer
(and randomized); the default run is 150 deterministic examples per database.
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal

import hypothesis
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from crm_platform.engine import make_engine
from crm_platform.engine.fieldtypes import TYPES
from crm_platform.engine.sqlexpr import NotTranslatable, to_sql
from crm_platform.metadata.expressions import compile_expression
from crm_platform.metadata.model import FieldDef

EXAMPLES = int(os.environ.get("CRM_SEMANTICS_EXAMPLES") or 0)
SETTINGS = hypothesis.settings(max_examples=EXAMPLES or 150, derandomize=not EXAMPLES, deadline=None,
                               database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

FIELDS = {"name": "text", "stage": "select", "qty": "integer", "amount": "currency", "flag": "boolean",
          "owner": "user", "team": "reference", "tags": "multiselect", "due": "date"}
TEXT_FIELDS, NUMBER_FIELDS = ("name", "stage", "owner", "team"), ("qty", "amount", "flag")
LINGUISTIC = "en-x-icu"  # PostgreSQL's ICU English collation: 'a' < 'b' < 'B', where Python has 'B' < 'a' < 'b'
USER = {"id": "u1", "username": "rep", "role": "rep", "team": "t1"}


def semantics_table() -> sa.Table:
    columns = [column for name, kind in FIELDS.items()
               for column in TYPES[kind].columns(FieldDef(name, kind, {"en": name}))]
    return sa.Table("semantics", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), *columns)


TABLE = semantics_table()


@pytest.fixture
def db(database):
    """An engine with the records table; on PostgreSQL its text columns collate linguistically."""
    url, options = database
    engine = make_engine(url, **options)
    with engine.begin() as conn:
        TABLE.create(conn)
        if conn.dialect.name == "postgresql":
            for name in TEXT_FIELDS:
                conn.execute(sa.text(f'ALTER TABLE semantics ALTER COLUMN {name} TYPE {TABLE.c[name].type} '
                                     f'COLLATE "{LINGUISTIC}"'))
    yield engine
    engine.dispose()


class _SqlNull:
    """A multiselect stored as SQL NULL (Python's None is stored as JSON ``null`` by SQLAlchemy)."""

    def __repr__(self) -> str:
        return "SQL_NULL"


SQL_NULL = _SqlNull()


def selections(engine, source: str, records: list[dict], user: dict) -> tuple[set[int], set[int], str]:
    """(ids the SQL clause selects, ids the Python evaluation finds true, the SQL) for ``records`` (ids 1..n)."""
    clause = to_sql(source, set(FIELDS))(TABLE, user)
    expression = compile_expression(source, set(FIELDS))
    with engine.begin() as conn:
        conn.execute(TABLE.delete())
        for i, record in enumerate(records, 1):
            values = {name: sa.null() if value is SQL_NULL else value for name, value in record.items()}
            conn.execute(TABLE.insert().values(id=i, **values))
        stored = [dict(row) for row in conn.execute(sa.select(TABLE)).mappings()]
        chosen = set(conn.scalars(sa.select(TABLE.c.id).where(clause)))
        sql = str(clause.compile(conn, compile_kwargs={"literal_binds": True}))
    return chosen, {row["id"] for row in stored if expression.evaluate(row, None, user)}, sql


# --- the known cases ------------------------------------------------------------------------------------

def chosen(db, source: str, records: list[dict], user: dict = USER) -> list:
    """The records the condition selects, in order, as the values of their first field, after checking
    that SQL and Python agree."""
    sql, python, text = selections(db, source, records, user)
    assert sql == python, f"{source}: SQL selects records {sorted(sql)}, Python {sorted(python)}; the SQL: {text}"
    first = next(iter(records[0]))
    return [records[i - 1][first] for i in sorted(sql)]


def test_not_equal_is_true_for_a_blank_value(db):
    records = [{"stage": "won"}, {"stage": "lost"}, {"stage": None}]
    assert chosen(db, "stage != 'won'", records) == ["lost", None]
    assert chosen(db, "stage == 'won'", records) == ["won"]


def test_not_in_is_true_for_a_blank_value_unless_none_is_listed(db):
    records = [{"stage": "won"}, {"stage": "new"}, {"stage": None}]
    assert chosen(db, "stage not in ('won', 'lost')", records) == ["new", None]
    assert chosen(db, "stage not in ('won', None)", records) == ["new"]
    assert chosen(db, "stage in ['won', None]", records) == ["won", None]


def test_not_of_an_ordering_with_a_blank_is_still_not_satisfied(db):
    records = [{"qty": 0}, {"qty": 5}, {"qty": None}]
    assert chosen(db, "not (qty > 1)", records) == [0]
    assert chosen(db, "not not (qty > 1)", records) == [5]
    assert chosen(db, "qty > 1 or not (qty > 1)", records) == [0, 5]


def test_and_or_operands_count_a_blank_ordering_as_false(db):
    records = [{"qty": None, "stage": "won"}, {"qty": 5, "stage": "won"}, {"qty": 0, "stage": "won"}]
    assert chosen(db, "not (qty > 1 and stage == 'won')", records) == [None, 0]
    assert chosen(db, "not (qty > 1 or stage == 'lost')", records) == [None, 0]


def test_comparison_with_an_absent_user_attribute_matches_only_blank(db):
    records = [{"team": "t1"}, {"team": None}]
    assert chosen(db, "team == user.team", records, {**USER, "team": None}) == [None]
    assert chosen(db, "team != user.team", records, {**USER, "team": None}) == ["t1"]
    assert chosen(db, "team == user.team", records) == ["t1"]
    assert chosen(db, "team < user.team", records, {**USER, "team": None}) == []


def test_is_blank_is_true_for_none_empty_and_whitespace_text(db):
    records = [{"name": None}, {"name": ""}, {"name": " \t\u3000"}, {"name": " x "}]
    assert chosen(db, "is_blank(name)", records) == [None, "", " \t\u3000"]
    assert chosen(db, "not is_blank(name)", records) == [" x "]
    assert chosen(db, "name", records) == [" \t\u3000", " x "]


def test_text_orders_by_code_point_whatever_the_collation(db):
    records = [{"name": "B"}, {"name": "a"}, {"name": "c"}]
    assert chosen(db, "name < 'b'", records) == ["B", "a"]
    assert chosen(db, "name >= 'a'", records) == ["a", "c"]


def test_amounts_compare_exactly_with_literals_of_more_places(db):
    records = [{"amount": Decimal("0.12")}, {"amount": Decimal("0.13")}, {"amount": None}]
    assert chosen(db, "amount >= 0.125", records) == [Decimal("0.13")]
    assert chosen(db, "amount <= 0.125", records) == [Decimal("0.12")]
    assert chosen(db, "amount == 0.125", records) == []
    assert chosen(db, "amount != 0.125", records) == [Decimal("0.12"), Decimal("0.13"), None]
    assert chosen(db, "amount < 1e30", records) == [Decimal("0.12"), Decimal("0.13")]


def test_integers_compare_with_fractions_and_numbers_beyond_64_bits(db):
    records = [{"qty": 1}, {"qty": 2}, {"qty": None}]
    assert chosen(db, "qty > 1.5", records) == [2]
    assert chosen(db, "qty in (1.0, 2.5)", records) == [1]
    assert chosen(db, "qty < 99999999999999999999", records) == [1, 2]
    assert chosen(db, "not (qty > -99999999999999999999)", records) == []


def test_booleans_are_the_numbers_one_and_zero(db):
    records = [{"flag": True}, {"flag": False}, {"flag": None}]
    assert chosen(db, "flag", records) == [True]
    assert chosen(db, "not flag", records) == [False, None]
    assert chosen(db, "flag == 1", records) == [True]
    assert chosen(db, "flag < 1", records) == [False]
    assert chosen(db, "flag is not True", records) == [False, None]


def test_text_and_numbers_are_never_equal_and_never_ordered(db):
    records = [{"qty": 1}, {"qty": None}]
    assert chosen(db, "qty == '1'", records) == []
    assert chosen(db, "qty != '1'", records) == [1, None]
    assert chosen(db, "qty < 'x'", records) == []
    assert chosen(db, "not (qty < 'x')", records) == []


def test_a_date_is_never_equal_to_text_nor_ordered_against_it(db):
    records = [{"due": date(2026, 1, 1)}, {"due": None}]
    assert chosen(db, "due == '2026-01-01'", records) == []
    assert chosen(db, "due != '2026-01-01'", records) == [date(2026, 1, 1), None]
    assert chosen(db, "due < '2027-01-01'", records) == []
    assert chosen(db, "due", records) == [date(2026, 1, 1)]


def test_a_list_is_blank_when_null_in_either_form_or_empty(db):
    records = [{"tags": None}, {"tags": SQL_NULL}, {"tags": []}, {"tags": ["a"]}]
    assert chosen(db, "tags is None", records) == [None, SQL_NULL]
    assert chosen(db, "is_blank(tags)", records) == [None, SQL_NULL, []]
    assert chosen(db, "tags", records) == [["a"]]


@pytest.mark.parametrize(("source", "message"), [
    ("contains(name, 'x')", "contains() cannot be evaluated in the database (of the functions, only is_blank(x) can)"),
    ("name == stage", ("'name == stage': a field can be compared with a literal or user.<attribute> in the database, "
                      "not with another field or a calculation")),
    ("1 < qty < 5", ("'1 < qty < 5': a chained comparison cannot be evaluated in the database "
                    "(compare one pair at a time, joined with 'and')")),
    ("stage in user.team", "'in' needs a list of literals, not 'user.team'"),
    ("qty is 1", "'is' compares a field only with None, True or False"),
    ("price > 1", "only stored fields can be compared in the database, not 'price'"),
    ("name == 'a\\x00'", "the text 'a\\x00' holds characters a database cannot store"),
    ("qty * 2 > 1", "only stored fields can be compared in the database, not 'qty * 2'"),
])
def test_what_sql_cannot_say_is_refused_with_a_reason(source, message):
    with pytest.raises(NotTranslatable) as info:
        to_sql(source, set(FIELDS))
    assert str(info.value) == message


# --- the differential test ------------------------------------------------------------------------------

TEXTS = st.text(alphabet="aBb é中\t\u3000", max_size=3)
NUMERALS = st.one_of(
    st.integers(-3, 3).map(str),
    st.sampled_from(["1.5", "0.125", "0.12", "-1.50", "2.0", "1e3", "1e30", "-1e30", "1000000", "True", "False",
                     "9223372036854775807", "9223372036854775808", "-9223372036854775809"]),
    st.decimals(-10, 10, places=3).map(str),
)
LITERALS = st.one_of(TEXTS.map(repr), NUMERALS, st.just("None"))
COMPARANDS = {**dict.fromkeys(("name", "stage"), TEXTS.map(repr)),
              **dict.fromkeys(("owner", "team"), st.sampled_from(["user.id", "user.team", "'u1'", "'t2'"])),
              **dict.fromkeys(NUMBER_FIELDS, NUMERALS),
              **dict.fromkeys(("tags", "due"), LITERALS)}


def comparand(field: str) -> st.SearchStrategy[str]:
    """Mostly a value of the field's own kind, sometimes any literal (a mismatch has a meaning too)."""
    return st.integers(0, 3).flatmap(lambda i: COMPARANDS[field] if i else LITERALS | st.just("user.team"))


def comparison(field: str) -> st.SearchStrategy[str]:
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    listed = st.lists(comparand(field), max_size=3).map(lambda items: f"({', '.join(items)}{',' * (len(items) == 1)})")
    return st.one_of(
        st.tuples(ops, comparand(field)).map(lambda t: f"{field} {t[0]} {t[1]}"),
        st.tuples(comparand(field), ops).map(lambda t: f"{t[0]} {t[1]} {field}"),
        st.tuples(st.sampled_from(["in", "not in"]), listed).map(lambda t: f"{field} {t[0]} {t[1]}"),
        st.sampled_from(["is None", "is not None", "is True", "is not False"]).map(lambda t: f"{field} {t}"),
        st.just(f"is_blank({field})"),
        st.just(field),
    )


LEAVES = st.integers(0, 7).flatmap(lambda i: st.sampled_from(sorted(FIELDS)).flatmap(comparison) if i
                                    else st.sampled_from(["is_blank(user.team)", "True", "user.team"]))
CONDITIONS = st.recursive(LEAVES, lambda inner: st.one_of(
    inner.map(lambda c: f"not ({c})"),
    st.tuples(st.sampled_from([" and ", " or "]), st.lists(inner, min_size=2, max_size=3))
      .map(lambda t: t[0].join(f"({c})" for c in t[1]))), max_leaves=6)

RECORDS = st.lists(st.fixed_dictionaries({
    "name": st.none() | TEXTS,
    "stage": st.sampled_from([None, "new", "won", "lost"]),
    "qty": st.none() | st.integers(-3, 3) | st.sampled_from([2 ** 63 - 1, -(2 ** 63)]),
    "amount": st.none() | st.decimals(-3, 3, places=2) | st.sampled_from([Decimal("999999999999999999.99")]),
    "flag": st.none() | st.booleans(),
    "owner": st.sampled_from([None, "u1", "u2"]),
    "team": st.sampled_from([None, "t1", "t2"]),
    "tags": st.sampled_from([None, SQL_NULL, [], ["a"], ["a", "b"]]),
    "due": st.none() | st.dates(date(2025, 1, 1), date(2027, 1, 1)),
}), min_size=4, max_size=10)
USERS = st.fixed_dictionaries({"id": st.sampled_from(["u1", "u2", None]), "team": st.sampled_from(["t1", None]),
                               "username": st.just("rep"), "role": st.just("rep")})


@SETTINGS
@given(source=CONDITIONS, records=RECORDS, user=USERS)
def test_sql_selects_exactly_what_python_finds_true(db, source, records, user):
    sql, python, text = selections(db, source, records, user)
    assert sql == python, f"{source}: SQL selects records {sorted(sql)}, Python {sorted(python)}; the SQL: {text}"
