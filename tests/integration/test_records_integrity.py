"""How the record service reads the database's own integrity errors: a unique-index violation is a 409
on its field (whatever got past the checks made in the transaction); anything else is not a duplicate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from crm_platform.engine import integrity
from crm_platform.engine.errors import Duplicate


def _violation(installation, statement, rows):
    with pytest.raises(sa.exc.IntegrityError) as info, installation.db.begin() as conn:
        conn.execute(statement, rows)
    return info.value


def _account(name: str, **extra) -> dict:
    now = datetime.now(UTC)
    return {"id": extra.get("id", name), "version": 1, "name": name, "relationship_type": "customer",
            "customer_type": "company", "created_at": now, "updated_at": now}


def test_a_unique_index_violation_names_its_field(installation):
    er = installation.runtime.entities["account"]
    error = _violation(installation, er.table.insert(), [_account("Acme", id="a1"), _account("Acme", id="a2")])
    assert integrity.unique_violation(er, error) == ("name",)


def test_another_integrity_error_is_not_a_duplicate(installation):
    er = installation.runtime.entities["account"]
    error = _violation(installation, er.table.insert(), [_account("Acme", id="a1"), _account("Other", id="a1")])
    assert integrity.unique_violation(er, error) == ()  # a primary-key clash is no field's duplicate


def test_a_unique_clash_the_checks_missed_is_a_409_on_the_field(installation, org, monkeypatch):
    """If the in-transaction check is bypassed (another writer, a bug), the index still answers, as a 409."""
    monkeypatch.setattr(integrity, "check_duplicates", lambda *args, **kwargs: None)
    service = installation.records(org["admin"])
    service.create("account", {"name": "Acme"})
    with pytest.raises(Duplicate) as info:
        service.create("account", {"name": "Acme"})
    assert info.value.code == "duplicate"
    assert [dict(label) for label in info.value.message.params["fields"]] == [{"en": "Account name", "zh": "客户名称"}]
