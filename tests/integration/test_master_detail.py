"""Master-detail records and ``on_delete``, as users see them through the API, on SQLite and PostgreSQL.

A payment is a detail of its contract (base pack): whoever may read the contract reads its payments,
whoever may update the contract writes them, whatever the payment's own record says. Deleting a
record applies each incoming reference's ``on_delete``: restrict (409), cascade (deleted too) or
set_null (cleared as a new version) — every change audited as the deleting user, all or nothing.

The definitions are the machinery fixture pack (delivered units: cascade from their account,
set_null from their contract) plus a small overlay written here (:func:`overlay_pack`): contracts
cascade from their account (two levels: account → contract → payments), a service visit that
restricts deleting its contract (a restrict deep inside a cascade), and a sharing rule that lets
every rep read — not update — contracts of a million or more.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_platform.engine import RecordInvalid, RecordService, audit, compile_runtime
from crm_platform.engine.hooks import NoHooks
from crm_platform.metadata import load_catalog

FIXTURE_PACKS = Path(__file__).resolve().parents[1] / "fixtures" / "packs"
URL = "/api/records"
FORBIDDEN_UPDATE = {"code": "forbidden", "message": "You may not update this Contract."}

OVERLAY = {
    "pack.json": {"name": "master_detail_test", "version": "0.1.0", "label": {"en": "Master-detail test"},
                  "extends": ["machinery"]},
    "entities/contract.json": {"name": "contract", "fields": [{"name": "account", "on_delete": "cascade"}]},
    "entities/service_visit.json": {
        "name": "service_visit", "label": {"en": "Service visit"},
        "fields": [{"name": "contract", "type": "reference", "label": {"en": "Contract"}, "target": "contract"},
                   {"name": "notes", "type": "text", "label": {"en": "Notes"}}]},
    "roles/rep.json": {"name": "rep", "sharing": [{"name": "big_contracts", "entity": "contract",
                                                   "condition": "amount >= 1000000", "level": "read"}]},
}


@pytest.fixture(scope="module")
def overlay_pack(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("packs") / "master_detail_test"
    for name, document in OVERLAY.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(document))
    return root


@pytest.fixture(scope="module")
def detail_runtime(overlay_pack):
    return compile_runtime(load_catalog([str(overlay_pack)], extra_paths=[FIXTURE_PACKS]))


@pytest.fixture
def installation(detail_runtime, install):
    """Overrides conftest's: a fresh database (file or PostgreSQL schema) migrated for the overlay."""
    return install(detail_runtime)


class Api:
    """One user's calls through the Flask test client."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def post(self, entity: str, **fields):
        return self.client.post(f"{URL}/{entity}", json=fields, headers=self.headers)

    def create(self, entity: str, **fields) -> dict:
        response = self.post(entity, **fields)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.json

    def get(self, entity: str, record_id: str):
        return self.client.get(f"{URL}/{entity}/{record_id}", headers=self.headers)

    def patch(self, entity: str, record: dict, **fields):
        return self.client.patch(f"{URL}/{entity}/{record['id']}", json={"version": record["version"], **fields},
                                 headers=self.headers)

    def delete(self, entity: str, record_id: str):
        return self.client.delete(f"{URL}/{entity}/{record_id}", headers=self.headers)

    def ids(self, entity: str) -> tuple[set[str], int]:
        """The ids of the entity's records this user lists, and the total the list counts."""
        body = self.client.get(f"{URL}/{entity}?count=true", headers=self.headers).json
        return {record["id"] for record in body["data"]}, body["paging"]["total"]


@pytest.fixture
def users(client, auth) -> dict[str, Api]:
    return {name: Api(client, auth(name)) for name in ("admin", "supervisor", "rep", "rep2")}


def error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    return {key: value for key, value in response.json["error"].items() if key != "request_id"}


def new_contract(api: Api, name: str, amount: str = "1000.00", **fields) -> dict:
    account = api.create("account", name=f"{name} Ltd")
    return api.create("contract", name=name, account=account["id"], amount=amount, **fields)


def instalment(api: Api, contract: dict, number: int = 1) -> dict:
    return api.create("payment", contract=contract["id"], instalment_no=number, due_date="2026-03-31", amount="100.00")


# -- who sees and writes payments ------------------------------------------------------------------------
def test_a_rep_lists_counts_and_reads_only_the_payments_of_their_own_contracts(users):
    rep, rep2, supervisor = users["rep"], users["rep2"], users["supervisor"]
    mine = new_contract(rep, "Mine")
    my_payments = {instalment(rep, mine, n)["id"] for n in (1, 2)}
    theirs = instalment(rep2, new_contract(rep2, "Theirs"))
    assert rep.ids("payment") == (my_payments, 2)
    assert rep2.ids("payment") == ({theirs["id"]}, 1)
    assert supervisor.ids("payment") == (my_payments, 2)  # the rep's team (Shanghai), not rep2's (Hangzhou)
    not_found = {"code": "not_found", "message": f"No Payment instalment with id '{theirs['id']}'."}
    assert error(rep.get("payment", theirs["id"]), 404) == not_found
    assert error(rep.patch("payment", theirs, status="invoiced"), 404) == not_found
    assert error(rep.client.get(f"{URL}/payment/{theirs['id']}/history", headers=rep.headers), 404) == not_found


@pytest.mark.parametrize("how", ["patch owner", "assign"])
def test_payments_follow_their_contract_when_it_is_reassigned(users, org, how):
    admin, rep, rep2 = users["admin"], users["rep"], users["rep2"]
    contract = new_contract(rep, "Handed over")
    payments = [instalment(rep, contract, n) for n in (1, 2)]
    if how == "assign":
        response = admin.client.post(f"{URL}/contract/{contract['id']}/assign", json={"owner": org["rep2"].id},
                                     headers=admin.headers)
    else:
        response = admin.patch("contract", contract, owner=org["rep2"].id)
    assert response.status_code == 200, response.json
    assert rep.ids("payment") == (set(), 0)
    assert error(rep.get("payment", payments[0]["id"]), 404)["code"] == "not_found"
    assert rep2.ids("payment") == ({p["id"] for p in payments}, 2)
    seen = rep2.get("payment", payments[0]["id"]).json
    assert (seen["contract"], seen["contract_owner"]) == (contract["id"], org["rep2"].id)
    assert (seen["owner"], seen["team"]) == (org["rep2"].id, org["rep2"].team)  # moved with the contract
    response = rep2.patch("payment", payments[0], status="paid", paid_on="2026-03-30", paid_amount="100.00")
    assert response.status_code == 200, response.json
    assert rep2.get("contract", contract["id"]).json["paid_amount"] == 100.0


def test_a_rep_may_not_add_or_move_payments_to_a_contract_they_may_only_read(users):
    rep, rep2 = users["rep"], users["rep2"]
    big = new_contract(rep2, "Big", amount="2000000.00")  # shared with every rep, read-only
    theirs = instalment(rep2, big)
    assert rep.get("contract", big["id"]).status_code == 200
    assert rep.ids("payment") == ({theirs["id"]}, 1)  # reading follows reading the contract
    assert error(rep.post("payment", contract=big["id"], instalment_no=2, due_date="2026-03-31", amount="5.00"),
                 403) == FORBIDDEN_UPDATE
    assert error(rep.patch("payment", theirs, status="invoiced"), 403) == {
        "code": "forbidden", "message": "You may not update this Payment instalment."}
    mine = instalment(rep, new_contract(rep, "Mine"))
    assert error(rep.patch("payment", mine, contract=big["id"]), 403) == FORBIDDEN_UPDATE
    assert rep.get("payment", mine["id"]).json == mine
    assert rep2.ids("payment") == ({theirs["id"]}, 1)


def test_a_contract_the_rep_cannot_read_is_as_unknown_as_a_missing_one(users):
    hidden = new_contract(users["rep2"], "Small")
    response = users["rep"].post("payment", contract=hidden["id"], instalment_no=1, due_date="2026-03-31",
                                 amount="5.00")
    assert error(response, 422)["fields"] == {"contract": [f"No Contract with id '{hidden['id']}'."]}


def test_a_rep_still_records_payments_on_an_active_contract_they_may_no_longer_edit(users):
    """The rep's role makes active contracts read-only (readonly_if): that locks the contract's own
    fields, not its payment plan."""
    rep = users["rep"]
    contract = new_contract(rep, "Signed", stage="active", signed_on="2026-01-05", start_date="2026-01-10")
    assert error(rep.patch("contract", contract, notes="late change"), 403) == FORBIDDEN_UPDATE
    payment = rep.create("payment", contract=contract["id"], instalment_no=1, due_date="2026-02-28",
                         amount="400.00", status="paid", paid_on="2026-02-27", paid_amount="400.00")
    assert payment["contract_owner"] == contract["owner"]
    assert rep.get("contract", contract["id"]).json["paid_amount"] == 400.0


def test_the_parents_description_lists_its_details_in_the_default_form(users):
    described = {name: users["rep"].client.get(f"/api/meta/entities/{name}", headers=users["rep"].headers).json
                 for name in ("contract", "opportunity", "payment")}
    assert described["payment"]["parent"] == "contract"
    reference = next(f for f in described["payment"]["fields"] if f["name"] == "contract")
    assert (reference["required"], reference["detail"], reference["on_delete"]) == (True, True, "cascade")

    def related(entity: str) -> list[dict]:
        return next(f["related"] for f in described[entity]["forms"] if f["name"] == "default")

    assert related("contract") == [{"entity": "payment", "field": "contract",
                                     "label": {"en": "Payment plan", "zh": "回款计划"},
                                     "columns": ["instalment_no", "due_date", "amount", "status", "paid_on",
                                                 "paid_amount"]}]
    assert [(r["entity"], r["field"]) for r in related("opportunity")] == [
        ("activity", "opportunity"), ("contract", "opportunity"), ("tender", "opportunity"),
        ("quote_line", "opportunity")]
    # listed without being declared: the detail's first fields, without the reference every row repeats
    assert related("opportunity")[-1] == {
        "entity": "quote_line", "field": "opportunity", "label": {"en": "Quote lines", "zh": "报价明细"},
        "columns": ["machine_model", "quantity", "unit_price", "discount", "line_amount", "model_category"]}


# -- on_delete -------------------------------------------------------------------------------------------
def trail(installation, entity: str, record_id: str) -> list[tuple[str, str]]:
    """(action, username) of each audit entry of the record, oldest first (readable after a delete)."""
    runtime = installation.runtime
    with installation.db.connect() as conn:
        entries = audit.read(conn, runtime.tables["audit"], runtime.tables["users"], entity, record_id)
    return [(entry["action"], entry["by"]["username"]) for entry in entries]


@pytest.fixture
def fleet(users) -> dict:
    """An account with a contract (two payments) and a delivered unit sold under that contract."""
    admin = users["admin"]
    account = admin.create("account", name="Quarry Co")
    contract = admin.create("contract", name="Fleet", account=account["id"], amount="1000.00")
    payments = [instalment(admin, contract, n) for n in (1, 2)]
    model = admin.create("machine_model", model_code="EX200", name="Excavator", warranty_months=24)
    unit = admin.create("machine_unit", serial_no="SN-1", account=account["id"], machine_model=model["id"],
                        contract=contract["id"])
    return {"account": account, "contract": contract, "payments": payments, "unit": unit}


def gone(api: Api, entity: str, record: dict) -> bool:
    return api.get(entity, record["id"]).status_code == 404


def test_deleting_a_contract_deletes_its_payments_each_audited_as_the_deleting_user(installation, users, fleet):
    admin = users["admin"]
    assert admin.delete("contract", fleet["contract"]["id"]).status_code == 204
    for payment in fleet["payments"]:
        assert gone(admin, "payment", payment)
        assert trail(installation, "payment", payment["id"]) == [("create", "admin"), ("delete", "admin")]
    assert trail(installation, "contract", fleet["contract"]["id"]) == [("create", "admin"), ("delete", "admin")]


def test_deleting_a_contract_clears_it_from_its_units_as_a_new_audited_version(users, org, fleet):
    admin = users["admin"]
    admin.delete("contract", fleet["contract"]["id"])
    unit = admin.get("machine_unit", fleet["unit"]["id"]).json
    assert (unit["contract"], unit["version"], unit["updated_by"]) == (None, 2, org["admin"].id)
    history = admin.client.get(f"{URL}/machine_unit/{unit['id']}/history", headers=admin.headers).json["data"]
    assert [(e["version"], e["action"], e["by"]["username"]) for e in history] == [(1, "create", "admin"),
                                                                                   (2, "update", "admin")]
    assert history[-1]["changes"] == [{"field": "contract", "old": fleet["contract"]["id"], "new": None}]


def test_an_account_with_contacts_cannot_be_deleted(users, fleet):
    admin = users["admin"]
    contact = admin.create("contact", last_name="Wang", account=fleet["account"]["id"])
    assert error(admin.delete("account", fleet["account"]["id"]), 409) == {
        "code": "conflict", "message": "Cannot delete: Contact records refer to it through 'Account'."}
    assert not gone(admin, "account", fleet["account"]) and not gone(admin, "contact", contact)
    assert not gone(admin, "machine_unit", fleet["unit"])


def test_deleting_an_account_cascades_through_its_contracts_to_their_payments(installation, users, fleet):
    admin = users["admin"]
    assert admin.delete("account", fleet["account"]["id"]).status_code == 204
    for entity, record in [("account", fleet["account"]), ("contract", fleet["contract"]),
                           ("machine_unit", fleet["unit"]), *(("payment", p) for p in fleet["payments"])]:
        assert gone(admin, entity, record), entity
        assert trail(installation, entity, record["id"])[-1] == ("delete", "admin"), entity
    # the unit lost its contract (set_null, version 2) before its account took it with it
    assert trail(installation, "machine_unit", fleet["unit"]["id"]) == [
        ("create", "admin"), ("update", "admin"), ("delete", "admin")]


def test_a_restrict_deep_inside_a_cascade_rolls_the_whole_delete_back(installation, users, fleet):
    """account → contract (cascade) → payments deleted (cascade), unit cleared (set_null), then the
    contract's service visit (restrict) refuses: nothing of it may remain done."""
    incoming = installation.runtime.entity("contract").incoming
    assert incoming == (("payment", "contract"), ("machine_unit", "contract"), ("service_visit", "contract"))
    admin = users["admin"]
    admin.create("service_visit", contract=fleet["contract"]["id"], notes="First service")
    records = [("account", fleet["account"]), ("contract", fleet["contract"]), ("machine_unit", fleet["unit"]),
               *(("payment", p) for p in fleet["payments"])]
    before = [admin.get(entity, record["id"]).json for entity, record in records]
    assert error(admin.delete("account", fleet["account"]["id"]), 409) == {
        "code": "conflict", "message": "Cannot delete: Service visit records refer to it through 'Contract'."}
    assert [admin.get(entity, record["id"]).json for entity, record in records] == before
    for entity, record in records:
        assert trail(installation, entity, record["id"]) == [("create", "admin")], entity


class PauseBeforeWrite(NoHooks):
    """Holds a write inside its transaction — its checks done, its row not yet written — until told to go on."""

    def __init__(self):
        self.checked, self.resume = threading.Event(), threading.Event()

    def before_write(self, event, connection):
        self.checked.set()
        assert self.resume.wait(30), "never resumed"


@pytest.mark.parametrize("child", ["payment", "machine_unit"])
def test_a_contract_deleted_while_a_record_referring_to_it_is_saved_leaves_nothing_dangling(
        installation, org, backend, fleet, child):
    """PostgreSQL: a save has checked that its contract exists, then someone deletes the contract.
    No record may be left referring to a contract that no longer exists:
    - a unit holds the contract FOR KEY SHARE, so the delete waits for the save to commit and then
      applies ``on_delete: set_null`` to the new unit too;
    - a payment's contract is locked by the upkeep of its rollups (after the save's checks), so the
      delete goes first and the save then finds its contract gone: 422 on ``contract``."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time: this interleaving cannot happen")
    contract = fleet["contract"]["id"]
    values = {"payment": {"contract": contract, "instalment_no": 9, "due_date": "2026-03-31", "amount": "5.00"},
              "machine_unit": {"serial_no": "SN-2", "account": fleet["account"]["id"], "contract": contract,
                               "machine_model": fleet["unit"]["machine_model"]}}[child]
    pause = PauseBeforeWrite()
    writer = RecordService(installation.runtime, installation.db, org["admin"], pause)
    outcome = {}

    def save():
        try:
            outcome["saved"] = writer.create(child, values)
        except RecordInvalid as exc:
            outcome["refused"] = {name: [m.key for m in messages] for name, messages in exc.fields.items()}

    saving = threading.Thread(target=save)
    saving.start()
    assert pause.checked.wait(30)
    deleting = threading.Thread(target=lambda: installation.records(org["admin"]).delete("contract", contract))
    deleting.start()
    deleting.join(1.5)
    waited = deleting.is_alive()
    pause.resume.set()
    saving.join(30)
    deleting.join(30)
    assert not deleting.is_alive() and not saving.is_alive()
    table = installation.runtime.entity(child).table
    with installation.db.connect() as conn:
        dangling = conn.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.contract == contract))
    assert dangling == 0
    if child == "payment":
        assert (waited, outcome) == (False, {"refused": {"contract": ["reference"]}})
    else:
        assert waited and "saved" in outcome
        with installation.db.connect() as conn:
            survivor = conn.execute(sa.select(table).where(table.c.id == outcome["saved"]["id"])).mappings().first()
        assert (survivor["contract"], survivor["version"]) == (None, 2)


def test_payments_that_become_details_take_their_contracts_owner_and_team_when_migrated(install, tmp_path):
    """An installation whose payments were not details yet (no owner/team columns): the migration to
    the base pack adds the columns and copies each contract's owner and team into its payments."""
    before = tmp_path / "before"
    (before / "entities").mkdir(parents=True)
    (before / "pack.json").write_text(json.dumps(
        {"name": "before", "version": "1.0.0", "label": {"en": "Before"}, "extends": ["base"]}))
    (before / "entities" / "payment.json").write_text(json.dumps(
        {"name": "payment", "fields": [{"name": "contract", "detail": False}]}))
    old = install(compile_runtime(load_catalog([str(before)])))
    assert "owner" not in old.runtime.entity("payment").table.c
    old.accounts.create_team("East")
    rep = old.accounts.find_actor(old.accounts.create_user("ann", "pw-ann-12345", "rep", "East"))
    service = old.records(rep)
    account = service.create("account", {"name": "Acme"})
    contract = service.create("contract", {"name": "Supply", "account": account["id"], "amount": 100})
    payment = old.records(None).create("payment", {"contract": contract["id"], "instalment_no": 1,
                                                   "due_date": "2026-05-01", "amount": 50})
    upgraded = type(old)(old.settings, old.db, compile_runtime(load_catalog("base")),
                         password_hasher=old.password_hasher)
    steps = {(s.kind, s.table, s.name) for s in upgraded.migrate()}
    assert {("add_column", "payment", "owner"), ("add_column", "payment", "team")} <= steps
    assert {k: upgraded.records(rep).get("payment", payment["id"])[k] for k in ("owner", "team")} == \
        {"owner": rep.id, "team": rep.team}
