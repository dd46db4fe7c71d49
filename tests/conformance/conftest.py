"""A real HTTP server for the conformance tests: the app on a free 127.0.0.1 port (werkzeug, threaded),
over conftest's fresh ``installation`` (SQLite or PostgreSQL) with its ``org`` and a few records of
every entity, owned by the admin and by the rep so either caller finds something to read and write."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import requests
from werkzeug.serving import make_server

from crm_platform.web import create_app


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    seeded: dict[str, list[str]]  # entity → ids of its seeded records
    samples: dict[str, dict]  # entity → a valid create body (owned by the caller)
    files: list[str] = field(default_factory=list)

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def seed(installation, org) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Two of everything: one owned by the admin, one by the rep (a payment: one of each one's contract;
    plus a lead and an account in the pool); and for each entity a valid create body (the rep's record's
    values, without an owner)."""
    system = installation.records(None)
    ids: dict[str, list[str]] = {}
    samples: dict[str, dict] = {}

    def make(entity: str, **values) -> dict:
        record = system.create(entity, values)
        ids.setdefault(entity, []).append(record["id"])
        samples[entity] = {k: v for k, v in values.items() if k != "owner"}
        return record

    for n, owner in enumerate([org["admin"].id, org["rep"].id]):
        account = make("account", name=f"Account {n}", owner=owner, annual_revenue="1234.50",
                       location={"lat": 31.2, "lon": 121.5}, tags=None)
        contact = make("contact", last_name=f"Contact {n}", account=account["id"], owner=owner)
        opportunity = make("opportunity", name=f"Deal {n}", account=account["id"], expected_close_date="2030-01-31",
                           amount=1000, probability="40", cost=250, owner=owner)
        make("lead", name=f"Lead {n}", owner=owner, score=50, email=f"lead{n}@example.com")
        contract = make("contract", name=f"Contract {n}", account=account["id"], amount="999.99", owner=owner,
                        opportunity=opportunity["id"])
        make("payment", contract=contract["id"], instalment_no=1, due_date="2030-02-01", amount=10)
        make("tender", title=f"Tender {n}", bid_deadline="2030-03-01T09:00:00+08:00", budget=5000, owner=owner)
        make("activity", subject=f"Call {n}", account=account["id"], contact=contact["id"], owner=owner,
             due_at="2030-01-01T10:00:00+00:00")
        make("product", sku=f"SKU-{n}", name=f"Product {n}", list_price=12.5, cost_price=7)
    make("lead", name="Pooled lead", owner=None)
    make("account", name="Pooled account", owner=None)
    return ids, samples


@pytest.fixture
def server(installation, org):
    """The app served over HTTP for one test; tokens for the admin and the rep."""
    app = create_app(installation=installation)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="conformance-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_port}"
    try:
        tokens = {}
        for username in ("admin", "rep"):
            response = requests.post(f"{url}/api/auth/token", timeout=10,
                                     json={"username": username, "password": f"{username}-password"})
            assert response.status_code == 200, response.text
            tokens[username] = response.json()["token"]
        served = Server(url, tokens, *seed(installation, org))
        response = requests.post(f"{url}/api/files", headers=served.headers("rep"), timeout=10,
                                 files={"file": ("note.txt", b"hello", "text/plain")})
        assert response.status_code == 201, response.text
        served.files.append(response.json()["id"])
        yield served
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()
