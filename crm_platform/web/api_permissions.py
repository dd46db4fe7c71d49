"""``GET /api/permissions/explain``: may a user do something, and why."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from crm_platform.engine.errors import BadRequest, Forbidden, NotFound
from crm_platform.engine.messages import Message

from .context import accounts, actor, installation, records

bp = Blueprint("api_permissions", __name__, url_prefix="/api/permissions")


@bp.get("/explain")
def explain():
    """``?user=<username or id>&entity=&action=[&id=][&field=]``. Anyone may ask about themselves;
    asking about someone else needs a more senior role whose team contains theirs (or the top level)."""
    caller, service = actor(), records()
    args = request.args
    if not args.get("entity") or not args.get("action"):
        raise BadRequest("bad_payload", detail=Message("explain_params"))
    subject = caller
    if args.get("user") and args["user"] not in (caller.username, caller.id):
        try:
            subject = accounts().find_actor(args["user"])
        except NotFound:
            if not may_explain_for(service.access, None):
                raise Forbidden("forbidden") from None  # no probing for usernames below the top level
            raise
        if not may_explain_for(service.access, subject):
            raise Forbidden("forbidden")
    answer = service.explain(args["entity"], args["action"], subject, args.get("id"), args.get("field"))
    return jsonify({"user": subject.username, "entity": args["entity"], "action": args["action"],
                    "id": args.get("id"), "field": args.get("field"), **answer})


def may_explain_for(access, subject) -> bool:
    """The top role level may ask about anyone (``subject`` None: about whether a user exists)."""
    caller, inst = access.actor, installation()
    roles = inst.runtime.catalog.roles
    caller_level = roles[caller.role].level if caller.role in roles else -1
    if caller_level >= max((r.level for r in roles.values()), default=0):
        return True
    if subject is None:
        return False
    subject_level = roles[subject.role].level if subject.role in roles else -1
    return caller_level > subject_level and subject.team in access.my_subtree
