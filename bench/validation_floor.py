"""The floor of the validation benchmark: a validator written by hand for exactly the benchmark entity,
doing the same checks and normalisation as the engine and collecting every error per field. The
per-type checks it calls are in ``validation_floor_checks``."""

from __future__ import annotations

import re

from .validation_floor_checks import (D0, D100, EMAIL, Bad, check_bool, check_date, check_datetime, check_geo, check_id,
                                      check_int, check_multi, check_number, check_phone, check_select, check_text,
                                      check_url)
from .validation_record import CHANNELS, INDUSTRY, PRIORITY, RECORD, REGION, STATUS, TAGS

_CODE = re.compile(r"[A-Z]{3}-[0-9]{4}")
_POSTCODE = re.compile(r"[0-9]{6}")
_KNOWN = frozenset(RECORD)
_STATUS, _PRIORITY, _REGION, _INDUSTRY = frozenset(STATUS), frozenset(PRIORITY), frozenset(REGION), frozenset(INDUSTRY)
_TAGS, _CHANNELS = frozenset(TAGS), frozenset(CHANNELS)
_M = object()  # an absent key


def floor_validate(data):
    """Hand-written for this entity, straight-line: every sent field checked and normalised,
    unknown fields and missing required ones reported, errors collected per field."""
    errors: dict[str, list[str]] = {}
    values = {}
    get = data.get
    for name in data.keys() - _KNOWN:
        errors[name] = ["unknown_field"]
    v = get("title", _M)
    if v is not _M:
        try:
            values["title"] = check_text(v, 200)
        except Bad as exc:
            errors.setdefault("title", []).append(exc.args[0])
    v = get("code", _M)
    if v is not _M:
        try:
            values["code"] = check_text(v, 20, _CODE)
        except Bad as exc:
            errors.setdefault("code", []).append(exc.args[0])
    v = get("subtitle", _M)
    if v is not _M:
        try:
            values["subtitle"] = check_text(v, 100)
        except Bad as exc:
            errors.setdefault("subtitle", []).append(exc.args[0])
    v = get("notes", _M)
    if v is not _M:
        try:
            values["notes"] = check_text(v, 2000, strip=False)
        except Bad as exc:
            errors.setdefault("notes", []).append(exc.args[0])
    v = get("description", _M)
    if v is not _M:
        try:
            values["description"] = check_text(v, 65535, strip=False)
        except Bad as exc:
            errors.setdefault("description", []).append(exc.args[0])
    v = get("email", _M)
    if v is not _M:
        try:
            values["email"] = check_text(v, 254, EMAIL)
        except Bad as exc:
            errors.setdefault("email", []).append(exc.args[0])
    v = get("alt_email", _M)
    if v is not _M:
        try:
            values["alt_email"] = check_text(v, 254, EMAIL)
        except Bad as exc:
            errors.setdefault("alt_email", []).append(exc.args[0])
    v = get("phone", _M)
    if v is not _M:
        try:
            values["phone"] = check_phone(v)
        except Bad as exc:
            errors.setdefault("phone", []).append(exc.args[0])
    v = get("mobile", _M)
    if v is not _M:
        try:
            values["mobile"] = check_phone(v)
        except Bad as exc:
            errors.setdefault("mobile", []).append(exc.args[0])
    v = get("website", _M)
    if v is not _M:
        try:
            values["website"] = check_url(v)
        except Bad as exc:
            errors.setdefault("website", []).append(exc.args[0])
    v = get("quantity", _M)
    if v is not _M:
        try:
            values["quantity"] = check_int(v, 0, 1_000_000)
        except Bad as exc:
            errors.setdefault("quantity", []).append(exc.args[0])
    v = get("rank", _M)
    if v is not _M:
        try:
            values["rank"] = check_int(v, 1, 100)
        except Bad as exc:
            errors.setdefault("rank", []).append(exc.args[0])
    v = get("headcount", _M)
    if v is not _M:
        try:
            values["headcount"] = check_int(v, 0)
        except Bad as exc:
            errors.setdefault("headcount", []).append(exc.args[0])
    v = get("weight", _M)
    if v is not _M:
        try:
            values["weight"] = check_number(v, 3, D0)
        except Bad as exc:
            errors.setdefault("weight", []).append(exc.args[0])
    v = get("ratio", _M)
    if v is not _M:
        try:
            values["ratio"] = check_number(v, 4)
        except Bad as exc:
            errors.setdefault("ratio", []).append(exc.args[0])
    v = get("amount", _M)
    if v is not _M:
        try:
            values["amount"] = check_number(v, 2, D0)
        except Bad as exc:
            errors.setdefault("amount", []).append(exc.args[0])
    v = get("cost", _M)
    if v is not _M:
        try:
            values["cost"] = check_number(v, 2, D0)
        except Bad as exc:
            errors.setdefault("cost", []).append(exc.args[0])
    v = get("budget", _M)
    if v is not _M:
        try:
            values["budget"] = check_number(v, 2)
        except Bad as exc:
            errors.setdefault("budget", []).append(exc.args[0])
    v = get("discount", _M)
    if v is not _M:
        try:
            values["discount"] = check_number(v, 2, D0, D100)
        except Bad as exc:
            errors.setdefault("discount", []).append(exc.args[0])
    v = get("probability", _M)
    if v is not _M:
        try:
            values["probability"] = check_number(v, 2, D0, D100)
        except Bad as exc:
            errors.setdefault("probability", []).append(exc.args[0])
    v = get("active", _M)
    if v is not _M:
        try:
            values["active"] = check_bool(v)
        except Bad as exc:
            errors.setdefault("active", []).append(exc.args[0])
    v = get("vip", _M)
    if v is not _M:
        try:
            values["vip"] = check_bool(v)
        except Bad as exc:
            errors.setdefault("vip", []).append(exc.args[0])
    v = get("consent", _M)
    if v is not _M:
        try:
            values["consent"] = check_bool(v)
        except Bad as exc:
            errors.setdefault("consent", []).append(exc.args[0])
    v = get("start_date", _M)
    if v is not _M:
        try:
            values["start_date"] = check_date(v)
        except Bad as exc:
            errors.setdefault("start_date", []).append(exc.args[0])
    v = get("end_date", _M)
    if v is not _M:
        try:
            values["end_date"] = check_date(v)
        except Bad as exc:
            errors.setdefault("end_date", []).append(exc.args[0])
    v = get("birthday", _M)
    if v is not _M:
        try:
            values["birthday"] = check_date(v)
        except Bad as exc:
            errors.setdefault("birthday", []).append(exc.args[0])
    v = get("due_at", _M)
    if v is not _M:
        try:
            values["due_at"] = check_datetime(v)
        except Bad as exc:
            errors.setdefault("due_at", []).append(exc.args[0])
    v = get("last_contact_at", _M)
    if v is not _M:
        try:
            values["last_contact_at"] = check_datetime(v)
        except Bad as exc:
            errors.setdefault("last_contact_at", []).append(exc.args[0])
    v = get("status", _M)
    if v is not _M:
        try:
            values["status"] = check_select(v, _STATUS)
        except Bad as exc:
            errors.setdefault("status", []).append(exc.args[0])
    v = get("priority", _M)
    if v is not _M:
        try:
            values["priority"] = check_select(v, _PRIORITY)
        except Bad as exc:
            errors.setdefault("priority", []).append(exc.args[0])
    v = get("region", _M)
    if v is not _M:
        try:
            values["region"] = check_select(v, _REGION)
        except Bad as exc:
            errors.setdefault("region", []).append(exc.args[0])
    v = get("industry", _M)
    if v is not _M:
        try:
            values["industry"] = check_select(v, _INDUSTRY)
        except Bad as exc:
            errors.setdefault("industry", []).append(exc.args[0])
    v = get("tags", _M)
    if v is not _M:
        try:
            values["tags"] = check_multi(v, _TAGS)
        except Bad as exc:
            errors.setdefault("tags", []).append(exc.args[0])
    v = get("channels", _M)
    if v is not _M:
        try:
            values["channels"] = check_multi(v, _CHANNELS)
        except Bad as exc:
            errors.setdefault("channels", []).append(exc.args[0])
    v = get("parent", _M)
    if v is not _M:
        try:
            values["parent"] = check_id(v)
        except Bad as exc:
            errors.setdefault("parent", []).append(exc.args[0])
    v = get("assignee", _M)
    if v is not _M:
        try:
            values["assignee"] = check_id(v)
        except Bad as exc:
            errors.setdefault("assignee", []).append(exc.args[0])
    v = get("location", _M)
    if v is not _M:
        try:
            values["location"] = check_geo(v)
        except Bad as exc:
            errors.setdefault("location", []).append(exc.args[0])
    v = get("city", _M)
    if v is not _M:
        try:
            values["city"] = check_text(v, 100)
        except Bad as exc:
            errors.setdefault("city", []).append(exc.args[0])
    v = get("postcode", _M)
    if v is not _M:
        try:
            values["postcode"] = check_text(v, 10, _POSTCODE)
        except Bad as exc:
            errors.setdefault("postcode", []).append(exc.args[0])
    v = get("remarks", _M)
    if v is not _M:
        try:
            values["remarks"] = check_text(v, 500, strip=False)
        except Bad as exc:
            errors.setdefault("remarks", []).append(exc.args[0])
    for name in ("title", "email", "quantity", "amount", "start_date", "status"):
        v = values.get(name)
        if (v is None or v == "" or v == []) and name not in errors:
            errors.setdefault(name, []).append("required")
    return values, errors
