"""Definitions → a frozen, checked :class:`Catalog`. Imports nothing else of crm_platform."""

from .catalog import load_catalog
from .errors import CrmError, DefinitionError, ExpressionError, Problem
from .model import Catalog, EntityDef, FieldDef, RoleDef

__all__ = ["load_catalog", "Catalog", "EntityDef", "FieldDef", "RoleDef",
           "CrmError", "DefinitionError", "ExpressionError", "Problem"]
