"""Catalog → Runtime → RecordService. Imports metadata; never flask, celery or redis."""

from .access import Access
from .accounts import Accounts, Actor
from .database import UnitOfWork, make_engine, new_id
from .errors import BadRequest, Conflict, Duplicate, Forbidden, NotFound, RecordError, RecordInvalid, StaleVersion
from .query import Filter, ListQuery
from .records import RecordService
from .runtime import EntityRuntime, Runtime, compile_runtime

__all__ = ["Access", "Accounts", "Actor", "make_engine", "new_id", "UnitOfWork", "RecordService", "Runtime", "EntityRuntime",
           "compile_runtime", "Filter", "ListQuery", "RecordError", "BadRequest", "Conflict", "Duplicate",
           "Forbidden", "NotFound", "RecordInvalid", "StaleVersion"]
