"""The one exception root of crm_platform and the errors of the definitions layer.

Every error the platform raises derives from :class:`CrmError` and carries a stable ``code``.
Two families split "the definition is wrong" (:class:`DefinitionError`, found at load time)
from "this request is wrong" (``crm_platform.engine.errors``).
"""

from __future__ import annotations

from dataclasses import dataclass


class CrmError(Exception):
    """Root of every error crm_platform raises."""

    code = "error"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition file: where, and what."""

    file: str
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.pointer or '/'}: {self.message}"


class DefinitionError(CrmError):
    """The definitions could not be loaded; ``problems`` lists every one found."""

    code = "definition"

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ExpressionError(CrmError):
    """An expression is not valid: syntax, an unknown name, or a construct not allowed."""

    code = "expression"


class ExpressionLimitError(ExpressionError):
    """Evaluating an expression would exceed a resource limit (huge power, huge repetition)."""

    code = "expression_limit"
