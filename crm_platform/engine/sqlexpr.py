"""Rendering a (small) expression as a SQL predicate, so record-level rules filter in the database.

Sharing-rule conditions must select records in lists and counts, not only check one loaded record,
so they are translated once per runtime into a function ``(table, user) -> SQL clause``. The
subset: comparisons between a field and literals (or ``user.<attr>``), ``in``/``not in`` a literal
list, ``is None``/``is not None``, ``is_blank(field)``, ``and``/``or``/``not``. Anything else is
reported when the runtime is compiled, naming the role file and pointer.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

Clause = Callable[[sa.Table, Mapping[str, Any]], Any]

_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_MIRROR = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


class NotTranslatable(ValueError):
    """The expression uses something SQL rendering does not support."""


def to_sql(source: str, columns: set[str]) -> Clause:
    """Compile ``source`` once into a function building the SQL clause for a table and a user."""
    return _node(ast.parse(source, mode="eval").body, columns)


def _value(node, columns) -> Callable[[sa.Table, Mapping], Any] | None:
    """A literal or ``user.<attr>`` (bound per request); None if the node is a column."""
    if isinstance(node, ast.Constant):
        return lambda table, user, v=node.value: v
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "user":
        return lambda table, user, attr=node.attr: user.get(attr)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return lambda table, user, v=-node.operand.value: v
    return None


def _column(node, columns) -> str:
    if isinstance(node, ast.Name) and node.id in columns:
        return node.id
    raise NotTranslatable(f"only stored fields can be compared in a sharing condition, not {ast.unparse(node)!r}")


def _node(node, columns) -> Clause:
    if isinstance(node, ast.BoolOp):
        parts = [_node(v, columns) for v in node.values]
        join = sa.and_ if isinstance(node.op, ast.And) else sa.or_
        return lambda table, user: join(*(p(table, user) for p in parts))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _node(node.operand, columns)
        return lambda table, user: sa.not_(inner(table, user))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "is_blank" and len(node.args) == 1:
        name = _column(node.args[0], columns)
        return lambda table, user: sa.or_(table.c[name].is_(None), table.c[name] == "")
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return _compare(node.left, node.ops[0], node.comparators[0], columns)
    if isinstance(node, ast.Name) and node.id in columns:
        return lambda table, user, n=node.id: table.c[n].is_(True)
    raise NotTranslatable(f"{ast.unparse(node)!r} cannot be evaluated in the database")


def _compare(left, op, right, columns) -> Clause:
    if isinstance(op, ast.In | ast.NotIn):
        name = _column(left, columns)
        if not isinstance(right, ast.Tuple | ast.List) or not all(isinstance(e, ast.Constant) for e in right.elts):
            raise NotTranslatable("'in' needs a literal list in a sharing condition")
        values = [e.value for e in right.elts]
        negate = isinstance(op, ast.NotIn)
        return lambda table, user: table.c[name].not_in(values) if negate else table.c[name].in_(values)
    if isinstance(op, ast.Is | ast.IsNot):
        name = _column(left, columns)
        if not (isinstance(right, ast.Constant) and right.value is None):
            raise NotTranslatable("only 'is None' / 'is not None' are supported")
        return lambda table, user: table.c[name].is_(None) if isinstance(op, ast.Is) else table.c[name].is_not(None)
    if type(op) not in _COMPARE:
        raise NotTranslatable(f"operator {type(op).__name__} is not supported")
    value = _value(right, columns)
    if value is not None:
        name, kind = _column(left, columns), type(op)
    else:
        value = _value(left, columns)
        if value is None:
            raise NotTranslatable("a comparison needs a field on one side and a literal on the other")
        name, kind = _column(right, columns), _MIRROR[type(op)]
    compare = _COMPARE[kind]
    return lambda table, user: compare(table.c[name], value(table, user))
