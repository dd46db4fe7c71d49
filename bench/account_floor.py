"""The account's share of an opportunity's work, written by hand, for the floors of ``create``,
``list_page`` and ``http``.

Since issue 7 the base pack's opportunity shows two values of its account (``account_industry``,
``account_region``: lookups, never stored) and the account keeps two sums over its opportunities
(``open_pipeline_amount``: amounts of the open ones, ``won_amount``: of the won ones; rollups,
recomputed in the transaction of every opportunity write). A floor that skipped either would
measure less work than the engine does, so the floors do it the way an engineer writing this one
application would:

* lookups: the page's (or the record's) query LEFT JOINs the account and selects its ``industry``
  and ``region`` under the lookups' names, and — for a caller who may not read every account — the
  caller's read predicate on the account as a column; a record whose account the caller may not
  read shows neither value (the engine leaves them out of that record's JSON);
* rollups, after the opportunity is written: lock the account row (PostgreSQL ``FOR UPDATE``; SQLite
  writers are already serialised by ``BEGIN IMMEDIATE``), both sums in one aggregate query, one
  ``UPDATE`` of the two columns. On SQLite amounts are exact text keys that SQL cannot add up
  (``engine/decimals.py``), so there the query returns each opportunity's stage and amount and the
  sums are made in Python, as the engine does.

Statements are built once, with bind parameters, from the engine's ``Table`` objects.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

LOOKUPS = {"account_industry": "industry", "account_region": "region"}
READABLE = "account_readable"
CLOSED = ("won", "lost")


def lookup_columns(accounts: sa.Table) -> list[sa.Column]:
    """The account columns the opportunity's lookups show."""
    return [accounts.c[column] for column in LOOKUPS.values()]


def lookups_of(account: sa.Row) -> dict:
    """The lookup values of an account row read with :func:`lookup_columns` (a create's reference
    check reads them in the same query)."""
    return {name: account._mapping[column] for name, column in LOOKUPS.items()}


def hide_unreadable(record: dict) -> dict:
    """A record read by :meth:`AccountFloor.select` with a read predicate: without the lookups if the
    caller may not read its account, and without the predicate's column."""
    if not record.pop(READABLE) and record["account"] is not None:
        for name in LOOKUPS:
            del record[name]
    return record


class AccountFloor:
    """The hand-written lookups and rollup upkeep for one runtime's tables and one database."""

    def __init__(self, runtime, dialect: str, readable: sa.ColumnElement[bool] | None = None):
        """``readable``: the caller's read predicate on the account (its bind parameters are given
        with the statement's), or None when the caller may read every account."""
        self._opportunities = opportunities = runtime.entity("opportunity").table
        accounts = runtime.entity("account").table
        self._joined = opportunities.outerjoin(accounts, accounts.c.id == opportunities.c.account)
        self._lookups = [accounts.c[column].label(name) for name, column in LOOKUPS.items()]
        if readable is not None:
            self._lookups.append(readable.label(READABLE))
        parent = sa.bindparam("account_id")
        self._lock = (sa.select(accounts.c.id).where(accounts.c.id == parent).with_for_update()
                      if dialect == "postgresql" else None)
        self._in_python = dialect == "sqlite"
        amount, stage = opportunities.c.amount, opportunities.c.stage
        if self._in_python:
            self._sums = sa.select(stage, amount).where(opportunities.c.account == parent)
        else:
            self._sums = sa.select(sa.func.sum(amount).filter(stage.not_in(CLOSED)),
                                   sa.func.sum(amount).filter(stage == "won")).where(opportunities.c.account == parent)
        self._store = accounts.update().where(accounts.c.id == parent).values(
            open_pipeline_amount=sa.bindparam("open_sum"), won_amount=sa.bindparam("won_sum"))

    def select(self) -> sa.Select:
        """``SELECT opportunity.*, account.industry AS account_industry, account.region AS account_region
        [, <readable> AS account_readable] FROM opportunity LEFT JOIN account ON account.id = opportunity.account``."""
        return sa.select(self._opportunities, *self._lookups).select_from(self._joined)

    def keep_rollups(self, conn: sa.Connection, account_id: str) -> None:
        """In the write's transaction, after the opportunity is written: the account's two sums recomputed."""
        params = {"account_id": account_id}
        if self._lock is not None:
            conn.execute(self._lock, params)
        if self._in_python:
            open_sum = won_sum = Decimal(0)
            for stage, amount in conn.execute(self._sums, params):
                if amount is None or stage == "lost":
                    continue
                if stage == "won":
                    won_sum += amount
                else:
                    open_sum += amount
        else:
            open_sum, won_sum = conn.execute(self._sums, params).one()
        conn.execute(self._store, {**params, "open_sum": open_sum or Decimal(0), "won_sum": won_sum or Decimal(0)})
