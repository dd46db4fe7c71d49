"""The platform's one expression language: formulas, defaults, conditions and stage gates.

The syntax is simpleeval's Python subset. An expression is parsed once, checked against an allow-list
(every name, every function, every construct), rewritten and compiled into a real Python function;
evaluating it never parses again. ``amount * probability / 100`` becomes, in effect::

    def _expr(_r, old=None, user=None):
        try:
            return _r.get("amount") * _r.get("probability") / 100
        except _NULLS:          # TypeError, ZeroDivisionError, ValueError, ... → None
            return None

Values behave like a spreadsheet's: a missing field is None, and an operation that fails on None
(``None * 3``) or on bad values (``x / 0``) makes the result None. An operand of ``and``/``or``, the
condition of ``a if c else b`` and an argument of ``coalesce``/``is_blank``/``min``/``max`` is evaluated
on its own, so ``amount > 1000 or stage == 'lost'`` is still True for a lost record with no amount.
Resource bombs (``9**9**9``, ``'x' * 10**9``) raise :class:`ExpressionLimitError`, never None.

Numbers are exact: amounts arrive as :class:`~decimal.Decimal` and a literal with a fraction or an
exponent (``0.13``, ``1e3``) compiles to the Decimal of its source text, so ``amount * 0.13`` is
exact decimal arithmetic (28 significant digits, Python's default context). Python refuses to mix
a float with a Decimal (``TypeError``); when that happens (a float from a Python caller, from ``int /
int``), the expression is evaluated again by its *exact twin*, compiled alongside it, in which every
arithmetic operation first turns a float operand into the Decimal of its repr. The twin costs nothing
until it is needed. Division by zero is None, as before.

Imports only the standard library and the metadata layer's errors and function library.
"""

from __future__ import annotations

import ast
import difflib
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ExpressionError
from .functions import FUNCTIONS
from .guards import EXACT as _EXACT
from .guards import GUARDS as _GUARDS
from .guards import RUNTIME as _RUNTIME

__all__ = ["FUNCTIONS", "MAX_SOURCE_LENGTH", "USER_ATTRS", "Expression", "compile_expression"]

USER_ATTRS: frozenset[str] = frozenset({"id", "username", "role", "team"})
MAX_SOURCE_LENGTH = 2000
MAX_DEPTH = 32

_TOO_DEEP = f"expression is nested too deeply (at most {MAX_DEPTH} levels)"




# --- the public surface ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression. ``evaluate(record, old=None, user=None)`` is the compiled function itself."""

    source: str
    names: frozenset[str]
    old_names: frozenset[str]
    user_attrs: frozenset[str]
    evaluate: Callable[..., Any] = field(compare=False, repr=False)


def compile_expression(source: str, names: Collection[str], *,
                       numeric_names: Collection[str] = ()) -> Expression:
    """Check ``source`` against the language and the readable ``names``, and compile it once.

    ``numeric_names`` are fields known to hold numbers (or None): arithmetic between them and numeric
    constants compiles to plain operators instead of guarded calls. Raises :class:`ExpressionError`.
    """
    tree = _parse(source)
    _check_depth(tree)
    text = source.strip()
    compiler = _Compiler(frozenset(names), frozenset(numeric_names), text)
    main = _function("_expr", compiler.visit(tree.body), "_xexpr")
    twin = _Compiler(frozenset(names), frozenset(numeric_names), text, exact=True)
    exact = _function("_xexpr", twin.visit(tree.body))
    body = [*compiler.helpers, main, *twin.helpers, exact]
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    try:
        code = compile(module, "<expression>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:  # pragma: no cover - checked above
        raise ExpressionError(f"expression could not be compiled: {exc}") from None
    namespace: dict[str, Any] = {"__builtins__": {}, **FUNCTIONS, **_RUNTIME, **compiler.constants}
    exec(code, namespace)  # defines _expr (and its _pN helpers) in its own namespace; no builtins
    evaluate = namespace["_expr"]
    evaluate.__doc__ = source
    return Expression(source, frozenset(compiler.read), frozenset(compiler.old),
                      frozenset(compiler.user), evaluate)


# --- parsing and checking ----------------------------------------------------------------------------

def _parse(source: str) -> ast.Expression:
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {type(source).__name__}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"expression is too long ({len(source)} characters, at most {MAX_SOURCE_LENGTH})")
    if not source.strip():
        raise ExpressionError("expression is empty")
    try:
        return ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        if "too many nested" in str(exc.msg) or "too complex" in str(exc.msg):
            raise ExpressionError(_TOO_DEEP) from None
        if exc.lineno is None:
            raise ExpressionError(f"invalid syntax: {exc.msg}") from None
        where = (f"column {exc.offset}" if exc.offset else "the end") if exc.lineno == 1 \
            else f"line {exc.lineno}, column {exc.offset}"
        raise ExpressionError(f"invalid syntax at {where}: {exc.msg}") from None
    except (RecursionError, MemoryError):  # the parser's own stack limits on pathological nesting
        raise ExpressionError(_TOO_DEEP) from None
    except ValueError as exc:  # e.g. a NUL character
        raise ExpressionError(f"invalid syntax: {exc}") from None


def _check_depth(tree: ast.Expression) -> None:
    """Iteratively (a deep tree must not exhaust our own stack) refuse more than MAX_DEPTH levels."""
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(_TOO_DEEP)
        stack.extend((child, depth + isinstance(child, ast.expr)) for child in ast.iter_child_nodes(node))


_CONSTRUCTS = {
    "Lambda": "lambda", "ListComp": "list comprehension", "SetComp": "set comprehension",
    "DictComp": "dict comprehension", "GeneratorExp": "generator expression", "JoinedStr": "f-string",
    "FormattedValue": "f-string", "NamedExpr": "':=' (walrus)", "Subscript": "subscript", "Slice": "slice",
    "Dict": "dict literal", "Set": "set literal", "Starred": "'*' unpacking", "Await": "await",
    "Yield": "yield", "YieldFrom": "yield",
}
_OPERATORS = {ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
              ast.MatMult: "@", ast.Invert: "~"}
_NULL_ABSORBING = frozenset({"coalesce", "is_blank", "min", "max"})
_NUMERIC_FUNCTIONS = frozenset({"len", "days_between", "days_since", "year", "month", "abs", "round"})
_CANNOT_FAIL_CMP = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)


def _refuse(node: ast.AST, what: str) -> ExpressionError:
    return ExpressionError(f"not allowed: {what} (at column {getattr(node, 'col_offset', 0) + 1})")


def _unknown(kind: str, name: str, known: Collection[str], prefix: str = "") -> ExpressionError:
    message = f"unknown {kind} '{prefix}{name}'"
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        message += f" (did you mean '{prefix}{close[0]}'?)"
    elif not prefix and kind == "name" and name in FUNCTIONS:
        message += f" ({name} is a function: call it as {name}(...))"
    return ExpressionError(message)


def _signature(name: str) -> str:
    parts = []
    for p in inspect.signature(FUNCTIONS[name]).parameters.values():
        parts.append(f"*{p.name}" if p.kind is p.VAR_POSITIONAL
                     else p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return f"{name}({', '.join(parts)})"


def _function(name: str, body: ast.expr, twin: str | None = None) -> ast.FunctionDef:
    """``def name(_r, old=None, user=None): try: return <body> except _NULLS: return None``; with a
    ``twin``, a TypeError that mixed a float and a Decimal returns ``twin(_r, old, user)`` instead."""
    fallback = f"_mixed(_e, {twin}, _r, old, user)" if twin else "None"
    fn = ast.parse(f"def {name}(_r, old=None, user=None):\n try:\n  return None\n"
                   f" except _NULLS{' as _e' if twin else ''}:\n  return {fallback}\n").body[0]
    fn.body[0].body[0].value = body  # type: ignore[attr-defined]
    return fn  # type: ignore[return-value]


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _get(mapping: ast.expr, key: str) -> ast.Call:
    """``mapping.get(key)`` — measured within a few percent of a plain subscript, and never raises."""
    return ast.Call(func=ast.Attribute(value=mapping, attr="get", ctx=ast.Load()),
                    args=[ast.Constant(key)], keywords=[])


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of plain attribute reads on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or any(p.startswith("__") for p in parts):
        return None
    return ".".join([node.id, *reversed(parts)])


def _cannot_fail(node: ast.AST) -> bool:
    """Whether evaluating a (checked) node can never raise, so it needs no isolation of its own."""
    if isinstance(node, (ast.Constant, ast.Name, ast.Attribute, ast.BoolOp)):
        return True  # a BoolOp isolates its own operands
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(map(_cannot_fail, node.elts))
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.Not) and _cannot_fail(node.operand)
    if isinstance(node, ast.IfExp):
        return _cannot_fail(node.body) and _cannot_fail(node.orelse)
    if isinstance(node, ast.Compare):
        return (all(isinstance(op, _CANNOT_FAIL_CMP) for op in node.ops)
                and _cannot_fail(node.left) and all(map(_cannot_fail, node.comparators)))
    if isinstance(node, ast.Call):
        return node.func.id in ("today", "now")  # type: ignore[attr-defined]
    return False


class _Compiler:
    """Checks a parsed expression node by node and returns the rewritten tree. With ``exact``, the
    tree of the exact twin: every arithmetic operation through its ``_x...`` function, helpers ``_xpN``."""

    def __init__(self, names: frozenset[str], numeric: frozenset[str], source: str = "", exact: bool = False):
        self.names, self.numeric, self.source, self.exact = names, numeric, source, exact
        self.read: set[str] = set()
        self.old: set[str] = set()
        self.user: set[str] = set()
        self.helpers: list[ast.FunctionDef] = []
        self.constants: dict[str, Decimal] = {}

    def visit(self, node: ast.AST) -> ast.expr:
        handler = getattr(self, "visit_" + type(node).__name__, None)
        if handler is None:
            raise _refuse(node, _CONSTRUCTS.get(type(node).__name__, type(node).__name__))
        return handler(node)

    def isolated(self, node: ast.expr) -> ast.expr:
        """The rewritten node, moved into its own try/except helper if it can fail."""
        rewritten = self.visit(node)
        if _cannot_fail(node):
            return rewritten
        name = f"_{'x' if self.exact else ''}p{len(self.helpers)}"
        self.helpers.append(_function(name, rewritten, None if self.exact else f"_xp{len(self.helpers)}"))
        return ast.Call(func=_load(name), args=[_load("_r"), _load("old"), _load("user")], keywords=[])

    def is_numeric(self, node: ast.AST) -> bool:
        """Statically a number (or None): never a str/list, so ``*`` and ``+`` need no guard."""
        if isinstance(node, ast.Constant):
            return type(node.value) in (int, float)
        if isinstance(node, ast.Name):
            return node.id in self.numeric
        if isinstance(node, ast.Attribute):
            path = _dotted(node)
            return path in self.numeric or (
                path is not None and path.startswith("old.") and path[4:] in self.numeric)
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, (ast.USub, ast.UAdd)) and self.is_numeric(node.operand)
        if isinstance(node, ast.BinOp):
            return self.is_numeric(node.left) and self.is_numeric(node.right)
        if isinstance(node, ast.IfExp):
            return self.is_numeric(node.body) and self.is_numeric(node.orelse)
        if isinstance(node, ast.Call):
            return node.func.id in _NUMERIC_FUNCTIONS  # type: ignore[attr-defined]
        return False

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        if node.value is not None and type(node.value) not in (str, int, float, bool):
            raise _refuse(node, f"{type(node.value).__name__} constant")
        if type(node.value) is float:
            return _load(self.decimal(node))
        return ast.Constant(node.value)

    def decimal(self, node: ast.Constant) -> str:
        """The name of a module constant holding the exact Decimal of a float literal's source text."""
        text = ast.get_source_segment(self.source, node) if self.source else None
        try:
            value = Decimal(text) if text else Decimal(repr(node.value))
        except InvalidOperation:
            value = Decimal(repr(node.value))
        name = f"_d{len(self.constants)}"
        self.constants[name] = value
        return name

    def visit_Name(self, node: ast.Name) -> ast.expr:
        name = node.id
        if name.startswith("__"):
            raise _refuse(node, f"dunder name '{name}'")
        if name not in self.names:
            if name == "old":
                raise ExpressionError("'old' can only be read as old.<field>")
            if name == "user":
                raise ExpressionError("'user' can only be read as user.<attribute>")
            raise _unknown("name", name, self.names)
        self.read.add(name)
        return _get(_load("_r"), name)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        base, attr = node.value, node.attr
        if not (isinstance(base, ast.Name) and base.id in ("old", "user")):
            path = _dotted(node)
            if path is not None and path in self.names:  # a path across references: account.industry
                self.read.add(path)
                return _get(_load("_r"), path)
            paths = [n for n in self.names if "." in n]
            if path is not None and paths:  # this context reads across references
                head = path.split(".")[0]
                if head not in self.names:
                    raise _unknown("name", head, [n for n in self.names if "." not in n])
                raise _unknown("path", path, paths)
            raise _refuse(node, "attribute access (only old.<field>, user.<attribute> "
                                "and paths across references such as account.industry)")
        if attr.startswith("__"):
            raise _refuse(node, f"dunder name '{attr}'")
        if base.id == "old":
            if attr not in self.names:
                raise _unknown("name", attr, self.names, prefix="old.")
            self.old.add(attr)
        else:
            if attr not in USER_ATTRS:
                raise ExpressionError(f"'user' has no attribute '{attr}' (it has {', '.join(sorted(USER_ATTRS))})")
            self.user.add(attr)
        # ``old``/``user`` may be None: read from an empty mapping then.
        return _get(ast.BoolOp(op=ast.Or(), values=[_load(base.id), _load("_E")]), attr)

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        return ast.Tuple(elts=[self.visit(e) for e in node.elts], ctx=ast.Load())

    def visit_List(self, node: ast.List) -> ast.expr:
        return ast.List(elts=[self.visit(e) for e in node.elts], ctx=ast.Load())

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        return ast.BoolOp(op=node.op, values=[self.isolated(v) for v in node.values])

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        op = type(node.op)
        if op in _OPERATORS:
            raise _refuse(node, f"operator '{_OPERATORS[op]}'")
        if op is ast.Mod and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            raise _refuse(node, "'%' formatting of text")
        left, right = self.visit(node.left), self.visit(node.right)
        if self.exact:
            return ast.Call(func=_load(_EXACT[op]), args=[left, right], keywords=[])
        guard = _GUARDS.get(op)
        if guard and (op is ast.Pow or not (self.is_numeric(node.left) and self.is_numeric(node.right))):
            return ast.Call(func=_load(guard), args=[left, right], keywords=[])
        return ast.BinOp(left=left, op=node.op, right=right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        if type(node.op) in _OPERATORS:
            raise _refuse(node, f"operator '{_OPERATORS[type(node.op)]}'")
        return ast.UnaryOp(op=node.op, operand=self.visit(node.operand))

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        operands = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if isinstance(op, (ast.Is, ast.IsNot)) and not any(
                    isinstance(x, ast.Constant) and type(x.value) in (bool, type(None)) for x in operands[i:i + 2]):
                raise ExpressionError("'is' only compares with None, True or False; use == instead")
        return ast.Compare(left=self.visit(node.left), ops=node.ops,
                           comparators=[self.visit(c) for c in node.comparators])

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        return ast.IfExp(test=self.isolated(node.test), body=self.visit(node.body), orelse=self.visit(node.orelse))

    def visit_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                self.visit(func)  # name.upper(): refused as attribute access, the clearer message
            raise _refuse(node, "calling anything but a library function")
        if func.id.startswith("__"):
            raise _refuse(node, f"dunder name '{func.id}'")
        if func.id not in FUNCTIONS:
            raise _unknown("function", func.id, FUNCTIONS)
        if node.keywords:
            raise _refuse(node, "keyword arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _refuse(node, "'*' unpacking")
        try:
            inspect.signature(FUNCTIONS[func.id]).bind(*node.args)
        except TypeError:
            raise ExpressionError(f"wrong number of arguments for {_signature(func.id)}: "
                                  f"got {len(node.args)}") from None
        arg = self.isolated if func.id in _NULL_ABSORBING else self.visit
        return ast.Call(func=_load(func.id), args=[arg(a) for a in node.args], keywords=[])
