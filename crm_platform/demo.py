"""Demo data for `crm init --demo`: a team tree, one user per base role, realistic records.

Every record is created through the record service, so demo data obeys the same rules as users.
"""

from __future__ import annotations

from datetime import date, timedelta

from .installation import Installation

TEAMS = [("Head Office", None), ("East Region", "Head Office"), ("Shanghai Sales", "East Region"),
         ("Hangzhou Sales", "East Region"), ("North Region", "Head Office"), ("Beijing Sales", "North Region"),
         ("Marketing", "Head Office")]

#: username, password, role, team
USERS = [("admin", "admin-demo-1", "admin", "Head Office"),
         ("manager", "manager-demo-1", "manager", "East Region"),
         ("supervisor", "supervisor-demo-1", "supervisor", "Shanghai Sales"),
         ("rep", "rep-demo-1", "rep", "Shanghai Sales"),
         ("rep2", "rep2-demo-1", "rep", "Hangzhou Sales"),
         ("marketing", "marketing-demo-1", "marketing", "Marketing")]


def _day(offset: int) -> str:
    return (date.today() + timedelta(days=offset)).isoformat()


def install_demo(inst: Installation) -> list[tuple[str, str, str, str]]:
    """Create the demo org and records (once); returns the demo logins."""
    accounts = inst.accounts
    if accounts.team_id("Head Office") is not None:
        return USERS
    for name, parent in TEAMS:
        accounts.create_team(name, parent)
    ids = {u: accounts.create_user(u, p, role, team, display_name=u.title()) for u, p, role, team in USERS
           if role in inst.runtime.catalog.roles}
    rep = accounts.actor(ids["rep"])
    rep2 = accounts.actor(ids["rep2"])
    marketing = accounts.actor(ids.get("marketing") or ids["admin"])
    entities = inst.runtime.catalog.entities
    as_rep, as_rep2, as_mkt = inst.records(rep), inst.records(rep2), inst.records(marketing)
    as_admin = inst.records(accounts.actor(ids["admin"]))

    if "product" in entities:
        for sku, name, price in [("SKU-CRM-STD", "CRM Standard (per seat/year)", 1200),
                                 ("SKU-CRM-PRO", "CRM Professional (per seat/year)", 2400),
                                 ("SVC-IMPL", "Implementation service (per day)", 3000)]:
            as_admin.create("product", {"sku": sku, "name": name, "list_price": price, "status": "active"})

    accounts_by_name = {}
    for name, phone, industry, rep_service in [
            ("Shanghai Fresh Mart Co.", "02155550101", "retail", as_rep),
            ("Hangzhou Bright Education", "057155550102", "education", as_rep2),
            ("Suzhou Precision Parts Ltd.", "051255550103", "manufacturing", as_rep)]:
        accounts_by_name[name] = rep_service.create("account", {
            "name": name, "phone": phone, "industry": industry, "relationship_type": "customer",
            "customer_type": "company", "level": "B"})
    fresh = accounts_by_name["Shanghai Fresh Mart Co."]
    contact = as_rep.create("contact", {"first_name": "Wei", "last_name": "Zhang", "account": fresh["id"],
                                        "title": "Purchasing Manager", "mobile": "13800138001",
                                        "email": "wei.zhang@freshmart.example"})
    _advance(as_rep, "opportunity", as_rep.create("opportunity", {
        "name": "Fresh Mart — 50 seats", "account": fresh["id"], "primary_contact": contact["id"],
        "amount": 60000, "probability": 30, "expected_close_date": _day(45)}), "needs_confirmed")
    edu = accounts_by_name["Hangzhou Bright Education"]
    _advance(as_rep2, "opportunity", as_rep2.create("opportunity", {
        "name": "Bright Education — implementation", "account": edu["id"], "amount": 90000, "probability": 50,
        "expected_close_date": _day(20)}), "proposal")
    for name, mobile, source, company in [("Li Na", "13900139001", "web_form", "Ningbo Harbour Foods"),
                                          ("Wang Fang", "13900139002", "event", "Wuxi Smart Home"),
                                          ("Chen Jie", "13900139003", "canvassing", "Corner Store #12")]:
        as_mkt.create("lead", {"name": name, "mobile": mobile, "source": source, "company": company,
                               "owner": None} if entities["lead"].pooled else
                      {"name": name, "mobile": mobile, "source": source, "company": company})
    as_rep.create("lead", {"name": "Zhou Min", "mobile": "13900139004", "source": "referral",
                           "company": "Jiaxing Dairy Co-op"})
    as_rep.create("activity", {"subject": "Visit Fresh Mart HQ", "type": "visit", "status": "done",
                               "account": fresh["id"], "check_in_location": {"lat": 31.2304, "lon": 121.4737}})
    as_rep.create("activity", {"subject": "Call Wei Zhang about seat count", "type": "call", "status": "planned",
                               "account": fresh["id"], "contact": contact["id"]})
    contract = as_rep.create("contract", {"name": "Suzhou Precision — CRM Standard", "amount": 24000,
                                          "account": accounts_by_name["Suzhou Precision Parts Ltd."]["id"],
                                          "signed_on": _day(-10), "start_date": _day(-10), "end_date": _day(355),
                                          "payment_terms": "installments"})
    as_rep.create("payment", {"contract": contract["id"], "instalment_no": 1, "due_date": _day(-5),
                              "amount": 12000, "status": "paid", "paid_on": _day(-4), "paid_amount": 12000})
    as_rep.create("payment", {"contract": contract["id"], "instalment_no": 2, "due_date": _day(85),
                              "amount": 12000, "status": "planned"})
    as_rep2.create("tender", {"title": "Zhejiang Provincial Hospital — CRM procurement", "buyer": "Zhejiang Provincial Hospital",
                              "budget": 800000, "region": "east"} if "region" in _choices(entities["tender"], "region")
                   else {"title": "Zhejiang Provincial Hospital — CRM procurement",
                         "buyer": "Zhejiang Provincial Hospital", "budget": 800000})
    return USERS


def _advance(service, entity: str, record: dict, stage: str) -> dict:
    """Move a record on to ``stage`` the way a user would: new records start in their initial stage."""
    return service.update(entity, record["id"], {"stage": stage}, record["version"])


def _choices(entity, field_name: str) -> set[str]:
    return set(entity.field(field_name).choice_values()) if entity.has_field(field_name) else set()
