"""The 40-field entity and record that the validation benchmark checks (shared by engine and floor)."""

from __future__ import annotations

from decimal import Decimal

ENTITY = "bench_record"


def _choices(*values):
    return [{"value": v, "label": {"en": v.title(), "zh": v}} for v in values]


STATUS = ("draft", "active", "paused", "closed", "archived")
PRIORITY = ("low", "normal", "high")
REGION = ("north", "northeast", "east", "central", "south", "southwest", "northwest", "overseas")
INDUSTRY = ("manufacturing", "it", "finance", "education", "healthcare", "retail", "food", "real_estate",
            "energy", "logistics", "telecom", "government", "services", "agriculture", "other")
TAGS = ("hot", "cold", "key_account", "referral", "partner", "strategic")
CHANNELS = ("phone", "email", "wechat", "visit", "event")


def _field(name, kind, **options):
    return {"name": name, "type": kind, "label": {"en": name.replace("_", " ").title(), "zh": name}, **options}


FIELDS = [
    _field("title", "text", required=True, max_length=200),
    _field("code", "text", max_length=20, pattern="[A-Z]{3}-[0-9]{4}"),
    _field("subtitle", "text", max_length=100),
    _field("notes", "textarea", max_length=2000),
    _field("description", "textarea"),
    _field("email", "email", required=True),
    _field("alt_email", "email"),
    _field("phone", "phone"),
    _field("mobile", "phone"),
    _field("website", "url"),
    _field("quantity", "integer", required=True, min=0, max=1_000_000),
    _field("rank", "integer", min=1, max=100),
    _field("headcount", "integer", min=0),
    _field("weight", "decimal", precision=3, min=0),
    _field("ratio", "decimal", precision=4),
    _field("amount", "currency", required=True, min=0, precision=2, currency="CNY"),
    _field("cost", "currency", min=0, precision=2, currency="CNY"),
    _field("budget", "currency", precision=2, currency="CNY"),
    _field("discount", "percent", min=0, max=100),
    _field("probability", "percent", min=0, max=100),
    _field("active", "boolean"),
    _field("vip", "boolean"),
    _field("consent", "boolean"),
    _field("start_date", "date", required=True),
    _field("end_date", "date"),
    _field("birthday", "date"),
    _field("due_at", "datetime"),
    _field("last_contact_at", "datetime"),
    _field("status", "select", required=True, choices=_choices(*STATUS)),
    _field("priority", "select", choices=_choices(*PRIORITY)),
    _field("region", "select", choices=_choices(*REGION)),
    _field("industry", "select", choices=_choices(*INDUSTRY)),
    _field("tags", "multiselect", choices=_choices(*TAGS)),
    _field("channels", "multiselect", choices=_choices(*CHANNELS)),
    _field("parent", "reference", target=ENTITY),
    _field("assignee", "user"),
    _field("location", "geo"),
    _field("city", "text", max_length=100),
    _field("postcode", "text", max_length=10, pattern="[0-9]{6}"),
    _field("remarks", "textarea", max_length=500),
]
assert len(FIELDS) == 40

#: The record as the web layer's JSON parser hands it over: a number with a fraction is a Decimal.
RECORD = {
    "title": "  Annual framework agreement — cold-chain logistics  ",
    "code": "ABC-1234",
    "subtitle": "East China distribution centres",
    "notes": "Met the purchasing director twice; wants a pilot in Q3. " * 5,
    "description": "Three warehouses, 40 refrigerated trucks, temperature telemetry and a customer portal.",
    "email": "li.wei@example.com",
    "alt_email": "purchasing@example.cn",
    "phone": "+86 (21) 5555-0100",
    "mobile": "138 0013 8000",
    "website": "https://www.example.com/about",
    "quantity": 1200,
    "rank": 7,
    "headcount": 350,
    "weight": Decimal("12.375"),
    "ratio": Decimal("0.4375"),
    "amount": Decimal("1250000.50"),
    "cost": "830000.25",
    "budget": 1500000,
    "discount": Decimal("12.5"),
    "probability": 60,
    "active": True,
    "vip": False,
    "consent": True,
    "start_date": "2025-03-01",
    "end_date": "2026-02-28",
    "birthday": "1980-11-23",
    "due_at": "2025-06-30T18:00:00+08:00",
    "last_contact_at": "2025-05-12T09:30:00+00:00",
    "status": "active",
    "priority": "high",
    "region": "east",
    "industry": "logistics",
    "tags": ["hot", "key_account", "hot"],
    "channels": ["phone", "wechat"],
    "parent": "0190f3a2-7c1d-7e5f-8a9b-0c1d2e3f4a5b",
    "assignee": "0190f3a2-7c1d-7e5f-8a9b-0c1d2e3f4a5c",
    "location": {"lat": Decimal("31.2304"), "lon": Decimal("121.4737")},
    "city": "Shanghai",
    "postcode": "200000",
    "remarks": "Send the revised quote by Friday.",
}
assert set(RECORD) == {f["name"] for f in FIELDS}
