"""The runtime of compiled expressions: the only non-native operations a compiled expression calls.

Resource guards (``9**9**9``, ``'x' * 10**9`` raise :class:`ExpressionLimitError`), ``%`` that refuses
text formatting, and the *exact twin*'s operations, which turn a float operand into the Decimal of
its repr (see :mod:`.expressions`). ``RUNTIME`` is the namespace a compiled expression runs in.
"""

from __future__ import annotations

import ast
import operator
import types
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .errors import ExpressionLimitError

MAX_EXPONENT = 64          # |b| in a ** b when both are whole numbers
MAX_POWER_BITS = 4096      # size of an int ** int result (about 1,200 digits)
MAX_REPEAT = 100_000       # items of a repeated str/list/tuple
MAX_CONCAT = 1_000_000     # items of a concatenated str/list/tuple
MAX_DECIMAL_EXPONENT = 308  # a Decimal power beyond 1e308 is None, as a float's overflow is

_NULLS = (ArithmeticError, TypeError, ValueError, AttributeError, LookupError)
_SEQUENCES = (str, bytes, list, tuple)



def _pow(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        if abs(b) > MAX_EXPONENT:
            raise ExpressionLimitError(f"exponent of ** is too large (at most {MAX_EXPONENT})")
        if b > 0 and a.bit_length() * b > MAX_POWER_BITS:
            raise ExpressionLimitError("result of ** is too large")
    result = a ** b
    if isinstance(result, Decimal) and (not result.is_finite() or result.adjusted() > MAX_DECIMAL_EXPONENT):
        return None
    return None if isinstance(result, complex) else result


def _mul(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES):
        if isinstance(b, int) and len(a) * b > MAX_REPEAT:
            raise ExpressionLimitError(f"repetition with * is too large (at most {MAX_REPEAT:,} items)")
    elif isinstance(b, _SEQUENCES) and isinstance(a, int) and len(b) * a > MAX_REPEAT:
        raise ExpressionLimitError(f"repetition with * is too large (at most {MAX_REPEAT:,} items)")
    return a * b


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES) and len(a) + len(b) > MAX_CONCAT:
        raise ExpressionLimitError(f"concatenation with + is too large (at most {MAX_CONCAT:,} items)")
    return a + b


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        return None  # '%' formatting of text is not part of the language (and can build huge strings)
    return a % b


_DIVISIONS = (operator.truediv,)


def _exactly(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``op`` as the exact twin runs it: a float operand becomes the Decimal of its repr, and an
    int divided by an int is a Decimal (``1 / 4`` → ``0.25``)."""
    def run(a: Any, b: Any) -> Any:
        if type(a) is float:
            a = Decimal(repr(a))
        if type(b) is float:
            b = Decimal(repr(b))
        if type(a) is int and type(b) is int and op in _DIVISIONS:
            a = Decimal(a)
        return op(a, b)
    return run


def _mixed(error: Exception, exact: Callable[..., Any], r: Any, old: Any, user: Any) -> Any:
    """What a failed evaluation gives: None, unless Python refused to mix a float and a Decimal —
    then the exact twin's answer."""
    if type(error) is TypeError:
        text = str(error)
        if "Decimal" in text and "float" in text:
            return exact(r, old, user)
    return None


_RUNTIME = {"_pow": _pow, "_mul": _mul, "_add": _add, "_mod": _mod, "_NULLS": _NULLS, "_mixed": _mixed,
            "_E": types.MappingProxyType({})}
_GUARDS = {ast.Pow: "_pow", ast.Mult: "_mul", ast.Add: "_add", ast.Mod: "_mod"}
_EXACT_OPS = {ast.Add: _add, ast.Sub: operator.sub, ast.Mult: _mul, ast.Div: operator.truediv,
              ast.FloorDiv: operator.floordiv, ast.Mod: _mod, ast.Pow: _pow}
_EXACT = {op: f"_x{op.__name__.lower()}" for op in _EXACT_OPS}
_RUNTIME.update({_EXACT[op]: _exactly(fn) for op, fn in _EXACT_OPS.items()})

RUNTIME, GUARDS, EXACT = _RUNTIME, _GUARDS, _EXACT
