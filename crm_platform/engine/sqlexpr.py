"""Rendering a (small) expression as a SQL predicate that selects exactly the records the Python
evaluator (``metadata/expressions.py``) finds it true for.

Sharing-rule conditions (and, soon, rollup filters) must select records in lists and counts, not only check
one loaded record, so they are translated once per runtime into a function ``(table, user) -> SQL
clause``. The subset: a stored field compared with a literal or ``user.<attr>``; ``in``/``not in`` a
list of those; ``is``/``is not`` ``None``/``True``/``False``; ``is_blank(x)``; a field or a literal on
its own (its truth); ``and``/``or``/``not``. Anything else raises :class:`NotTranslatable`, which the
policy compiler reports naming the role file and pointer.

One meaning, the Python evaluator's (``docs/definitions.md``, "Blank values"; proven on SQLite and
PostgreSQL by ``tests/integration/test_expression_semantics.py``). There a comparison is true, false or
an *error* (``None < 1``, ``'a' < 1``) that makes the whole expression None, not satisfied; ``not`` of an
error is still an error, but an operand of ``and``/``or`` is evaluated on its own, so there an error
counts as false. ``==``, ``!=``, ``in`` and ``is`` never fail: a blank equals only blank. So every node is
rendered as SQL that is TRUE, FALSE or NULL exactly where Python's value is true, false or an error
(:class:`_Truth`), and SQL's own NOT, AND and OR do the rest.

How a column's values compare with a Python value depends on what the column holds — text, numbers,
booleans, JSON lists, dates — and is decided when the clause is built for a table (:data:`_KINDS`).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from crm_platform.metadata.functions import is_blank

from .decimals import EXACT
from .numbers import INT64_MAX, INT64_MIN

Clause = Callable[[sa.Table, Mapping[str, Any]], Any]

_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_MIRROR = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq,
           ast.Is: ast.Is, ast.IsNot: ast.IsNot}
_BELOW = (ast.Lt, ast.LtE)

#: What ``str.strip()`` removes, so ``is_blank`` is the same test in SQL (no whitespace is above U+3000).
_WHITESPACE = "".join(filter(str.isspace, map(chr, range(0x3001))))


class NotTranslatable(ValueError):
    """The expression uses something SQL rendering does not support."""


@dataclass(frozen=True, slots=True)
class _Truth:
    """A condition as SQL: TRUE, FALSE or NULL exactly where the Python value is true, false or an error."""

    sql: Any
    known: Any = None  # SQL that holds exactly where ``sql`` is not NULL; None: ``sql`` is never NULL

    def isolated(self) -> Any:
        """TRUE where the Python value is true, FALSE elsewhere: an operand of and/or, which Python
        evaluates on its own, so an error there counts as false."""
        return self.sql if self.known is None else sa.and_(self.known, self.sql)


_UNKNOWN = _Truth(sa.null(), sa.false())  # an error for every record (``name < 1``)


def _unless_null(expr: Any, value: bool) -> _Truth:
    """``value`` for every record where ``expr`` is not NULL (an ordering no stored value can miss)."""
    return _Truth(sa.case((expr.is_(None), sa.null()), else_=sa.true() if value else sa.false()),
                  expr.is_not(None))


class _CodePoints(FunctionElement):
    """Text that orders by Unicode code point, as Python orders str. SQLite's default collation
    (BINARY, on UTF-8) already does; PostgreSQL's database collation may be linguistic."""

    type = sa.String()
    inherit_cache = True


@compiles(_CodePoints)
def _code_points(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(_CodePoints, "postgresql")
def _code_points_postgresql(element, compiler, **kw):
    return f'{compiler.process(element.clauses, **kw)} COLLATE "C"'


# --- how one column's values compare with Python values -------------------------------------------

class _Kind:
    """The base, and the kind of dates and datetimes: values Python never finds equal to a literal
    (text, a number) nor can order against one."""

    def null(self, col) -> Any:
        return col.is_(None)

    def equal(self, col, values: list) -> Any:
        """Never NULL: the column holds one of the (non-None) ``values``."""
        return sa.false()

    def same(self, col, value: bool) -> Any:
        """Never NULL: ``col is value`` (True or False)."""
        return sa.false()

    def order(self, col, op: type, value: Any) -> _Truth:
        return _UNKNOWN

    def blank(self, col) -> Any:
        return self.null(col)

    def truth(self, col) -> Any:
        return sa.not_(self.null(col))


def _one_of(col, values: list) -> Any:
    """Never NULL: the column holds one of ``values`` (FALSE for a blank value, or no values)."""
    if not values:
        return sa.false()
    return sa.and_(col.is_not(None), col == values[0] if len(values) == 1 else col.in_(values))


class _Text(_Kind):
    def equal(self, col, values):
        return _one_of(col, [v for v in values if type(v) is str])

    def order(self, col, op, value):
        if type(value) is not str:
            return _UNKNOWN
        return _Truth(_COMPARE[op](_CodePoints(col), value), col.is_not(None))

    def blank(self, col):
        return sa.or_(col.is_(None), sa.func.trim(col, _WHITESPACE) == "")

    def truth(self, col):
        return sa.and_(col.is_not(None), col != "")


def _number(value: Any) -> Decimal | None:
    """A literal as Python's numeric comparisons see it (``True`` is 1); None for anything else."""
    return Decimal(value) if type(value) in (int, bool, Decimal) else None


@dataclass(frozen=True, slots=True)
class _Number(_Kind):
    """A column holding the multiples of ``quantum`` from ``low`` to ``high`` (integers: quantum 1)."""

    quantum: Decimal
    low: Decimal
    high: Decimal
    integral: bool

    @classmethod
    def amounts(cls, col) -> _Number:
        """The kind of a ``NUMERIC(precision, scale)`` column."""
        quantum = Decimal(1).scaleb(-col.type.scale)
        high = Decimal(10) ** (col.type.precision - col.type.scale) - quantum
        return cls(quantum, -high, high, False)

    def step(self, number: Decimal, rounding: str) -> Decimal:
        return number.quantize(self.quantum, rounding=rounding, context=EXACT)

    def bind(self, number: Decimal) -> Any:
        return int(number) if self.integral else number

    def held(self, value: Any) -> Decimal | None:
        """The value, if the column can hold it (only those can be equal)."""
        number = _number(value)
        if number is None or not self.low <= number <= self.high or self.step(number, ROUND_FLOOR) != number:
            return None
        return number

    def equal(self, col, values):
        return _one_of(col, [self.bind(n) for n in map(self.held, values) if n is not None])

    def order(self, col, op, value):
        number = _number(value)
        if number is None:
            return _UNKNOWN
        if number > self.high:
            return _unless_null(col, op in _BELOW)
        if number < self.low:
            return _unless_null(col, op not in _BELOW)
        if self.held(number) is None:  # between two values the column can hold: compare with a neighbour
            op, number = (ast.LtE, self.step(number, ROUND_FLOOR)) if op in _BELOW \
                else (ast.GtE, self.step(number, ROUND_CEILING))
        return _Truth(_COMPARE[op](col, self.bind(number)), col.is_not(None))

    def truth(self, col):
        return sa.and_(col.is_not(None), col != 0)


_INTEGERS = _Number(Decimal(1), Decimal(INT64_MIN), Decimal(INT64_MAX), True)
_BITS = _Number(Decimal(1), Decimal(0), Decimal(1), True)


class _Boolean(_Kind):
    """Python's True and False are the numbers 1 and 0: ``flag == 1`` and ``flag < 2`` hold for True."""

    def equal(self, col, values):
        wanted = {n == 1 for n in map(_BITS.held, values) if n is not None}
        if len(wanted) == 2:
            return col.is_not(None)
        return col.is_(wanted.pop()) if wanted else sa.false()

    def same(self, col, value):
        return col.is_(value)

    def order(self, col, op, value):
        return _BITS.order(sa.cast(col, sa.Integer), op, value)

    def truth(self, col):
        return col.is_(True)


class _Json(_Kind):
    """Lists (multiselect): Python's None is SQL NULL or the JSON ``null`` SQLAlchemy writes for it."""

    def null(self, col):
        return sa.or_(col.is_(None), sa.cast(col, sa.Text) == "null")

    def blank(self, col):
        return sa.or_(self.null(col), sa.cast(col, sa.Text).in_(["[]", "{}"]))

    def truth(self, col):
        return sa.not_(self.blank(col))


_TEXT, _BOOLEAN, _JSON, _OTHER = _Text(), _Boolean(), _Json(), _Kind()
_KINDS: Mapping[type, Callable[[sa.Column], _Kind]] = {
    str: lambda col: _TEXT, bool: lambda col: _BOOLEAN, int: lambda col: _INTEGERS, Decimal: _Number.amounts,
    date: lambda col: _OTHER, datetime: lambda col: _OTHER,
}


def _kind(col: sa.Column) -> _Kind:
    if isinstance(col.type, sa.JSON):
        return _JSON
    kind = _KINDS.get(col.type.python_type)
    if kind is None:  # a new column type must say here how its values compare before a condition uses it
        raise NotTranslatable(f"values of {col.name!r} cannot be compared in the database")
    return kind(col)


def _member(kind: _Kind, col, values: list) -> _Truth:
    """Python's ``in`` (and ``==``), never an error: the column's value is one of ``values``, a blank
    value only if None is among them."""
    found = kind.equal(col, [v for v in values if v is not None])
    return _Truth(sa.or_(kind.null(col), found) if None in values else found)


# --- the translation ---------------------------------------------------------------------------------

_Build = Callable[[sa.Table, Mapping[str, Any]], _Truth]
_Value = Callable[[Mapping[str, Any]], Any]  # a literal's or ``user.<attr>``'s Python value, for a user


def to_sql(source: str, columns: set[str]) -> Clause:
    """Compile ``source`` once into a function building the SQL clause for a table and a user."""
    text = source.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise NotTranslatable(f"invalid syntax: {exc.msg}") from None
    build = _Translator(text, frozenset(columns)).condition(tree.body)
    return lambda table, user: build(table, user).sql


def _on_column(name: str, test: Callable[[_Kind, Any, Mapping[str, Any]], _Truth]) -> _Build:
    """A condition on one column, whose kind is known once the clause is built for a table."""
    def build(table, user):
        col = table.c[name]
        return test(_kind(col), col, user)
    return build


def _not(build: _Build, negate: bool = True) -> _Build:
    """Python's ``not``: an error stays an error, as SQL's NOT keeps NULL."""
    def negated(table, user):
        truth = build(table, user)
        return _Truth(sa.not_(truth.sql), truth.known)
    return negated if negate else build


def _constant(value: _Value, test: Callable[[Any], bool]) -> _Build:
    """A condition on a literal or ``user.<attr>`` only: decided in Python when the clause is built."""
    return lambda table, user: _Truth(sa.true() if test(value(user)) else sa.false())


@dataclass(frozen=True, slots=True)
class _Translator:
    source: str
    columns: frozenset[str]

    def condition(self, node: ast.expr) -> _Build:
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v) for v in node.values]
            join = sa.and_ if isinstance(node.op, ast.And) else sa.or_
            return lambda table, user: _Truth(join(*(part(table, user).isolated() for part in parts)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return _not(self.condition(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.blank(node)
        if self.is_column(node):
            return _on_column(node.id, lambda kind, col, user: _Truth(kind.truth(col)))
        value = self.value(node)
        if value is None:
            raise NotTranslatable(f"{ast.unparse(node)!r} cannot be evaluated in the database")
        return _constant(value, bool)

    def is_column(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id in self.columns

    def column(self, node: ast.expr) -> str:
        if not self.is_column(node):
            raise NotTranslatable(f"only stored fields can be compared in the database, not {ast.unparse(node)!r}")
        return node.id

    def value(self, node: ast.expr) -> _Value | None:
        """A literal or ``user.<attr>`` (read per request); None if the node is neither."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "user":
            return lambda user, attr=node.attr: user.get(attr)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
                and type(node.operand.value) in (int, float):
            negative = -self.literal(node.operand)
            return lambda user: negative
        if isinstance(node, ast.Constant):
            literal = self.literal(node)
            return lambda user: literal
        return None

    def literal(self, node: ast.Constant) -> Any:
        """The constant as the Python evaluator holds it: a number with a fraction or an exponent is the
        Decimal of its source text."""
        value = node.value
        if type(value) is float:
            return Decimal(ast.get_source_segment(self.source, node))
        if type(value) is str and ("\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)):
            raise NotTranslatable(f"the text {value!r} holds characters a database cannot store")
        if value is not None and type(value) not in (str, int, bool):
            raise NotTranslatable(f"{ast.unparse(node)!r} cannot be evaluated in the database")
        return value

    def compare(self, node: ast.Compare) -> _Build:
        if len(node.ops) != 1:
            raise NotTranslatable(f"{ast.unparse(node)!r}: a chained comparison cannot be evaluated in the database "
                                  "(compare one pair at a time, joined with 'and')")
        op, left, right = type(node.ops[0]), node.left, node.comparators[0]
        if op in (ast.In, ast.NotIn):
            return _not(self.member(self.column(left), self.values(right)), op is ast.NotIn)
        if self.is_column(right) and not self.is_column(left):  # a literal on the left: mirror it
            op, left, right = _MIRROR[op], right, left
        name, value = self.column(left), self.value(right)
        if value is None:
            raise NotTranslatable(f"{ast.unparse(node)!r}: a field can be compared with a literal or user.<attribute> "
                                  "in the database, not with another field or a calculation")
        if op in (ast.Is, ast.IsNot):
            return _not(self.identity(name, right), op is ast.IsNot)
        if op in (ast.Eq, ast.NotEq):
            return _not(self.member(name, [value]), op is ast.NotEq)
        return _on_column(name, lambda kind, col, user: kind.order(col, op, value(user)))

    def values(self, node: ast.expr) -> list[_Value]:
        values = [self.value(e) for e in node.elts] if isinstance(node, ast.Tuple | ast.List) else [None]
        if None in values:
            raise NotTranslatable(f"'in' needs a list of literals, not {ast.unparse(node)!r}")
        return values

    @staticmethod
    def member(name: str, values: list[_Value]) -> _Build:
        return _on_column(name, lambda kind, col, user: _member(kind, col, [v(user) for v in values]))

    @staticmethod
    def identity(name: str, right: ast.expr) -> _Build:
        """``x is None``, ``x is True``, ``x is False``."""
        if not (isinstance(right, ast.Constant) and type(right.value) in (bool, type(None))):
            raise NotTranslatable("'is' compares a field only with None, True or False")
        target = right.value
        return _on_column(name, lambda kind, col, user: _Truth(
            kind.null(col) if target is None else kind.same(col, target)))

    def blank(self, node: ast.Call) -> _Build:
        if not (isinstance(node.func, ast.Name) and node.func.id == "is_blank" and len(node.args) == 1):
            raise NotTranslatable(f"{ast.unparse(node.func)}() cannot be evaluated in the database "
                                  "(of the functions, only is_blank(x) can)")
        arg = node.args[0]
        if self.is_column(arg):
            return _on_column(arg.id, lambda kind, col, user: _Truth(kind.blank(col)))
        value = self.value(arg)
        if value is None:
            raise NotTranslatable(f"is_blank() takes a stored field or a literal in the database, not {ast.unparse(arg)!r}")
        return _constant(value, is_blank)
