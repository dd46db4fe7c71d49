"""Error message templates by key, per locale. The engine raises keys; interfaces render them.

A message's parameters are rendered in the caller's locale too, so no language leaks into another:

- a locale map (a label from the definitions, ``{"en": "Won", "zh": "赢单"}``) → its text in that locale;
- a :class:`Message` (a detail inside a message) → rendered in the same locale;
- a tuple (the engine's, e.g. several field labels) → each item rendered, joined with the locale's list
  separator (a list is left alone: it is data the user sent);
- a word of the platform's own vocabulary under the parameters listed in ``VOCABULARY`` (``expected="integer"``,
  ``action="convert"``, ``entity="team"``) → its translation;
- anything else (values the user sent, ids, numbers) → as it is.

Rendering never raises: a missing locale falls back to ``en``, then to any text present; an unknown key
shows the key; a missing parameter shows as ``?``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from crm_platform.metadata.model import FALLBACK_LOCALE

__all__ = ["FALLBACK_LOCALE", "TEMPLATES", "VOCABULARY", "Message", "pick"]


def _frozen(table: dict) -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType({key: MappingProxyType(texts) for key, texts in table.items()})


TEMPLATES = _frozen({
    "required": {"en": "This field is required.", "zh": "此字段为必填项。"},
    "unknown_field": {"en": "Unknown field.", "zh": "未知字段。"},
    "readonly": {"en": "This field is read-only.", "zh": "此字段为只读。"},
    "type": {"en": "Must be {expected}.", "zh": "必须是{expected}。"},
    "max_length": {"en": "At most {max} characters.", "zh": "最多 {max} 个字符。"},
    "pattern": {"en": "Does not match the required format.", "zh": "格式不正确。"},
    "min": {"en": "Must be at least {min}.", "zh": "不能小于 {min}。"},
    "max": {"en": "Must be at most {max}.", "zh": "不能大于 {max}。"},
    "choice": {"en": "{value!r} is not one of the choices: {choices}.", "zh": "{value!r} 不是可选值：{choices}。"},
    "dependent_choice": {"en": "{value!r} is not allowed when {parent} is {parent_value!r}.",
                         "zh": "当「{parent}」为 {parent_value!r} 时不允许 {value!r}。"},
    "email": {"en": "Not a valid email address.", "zh": "邮箱地址无效。"},
    "url": {"en": "Not a valid http(s) URL.", "zh": "网址无效（需以 http:// 或 https:// 开头）。"},
    "phone": {"en": "Not a valid phone number.", "zh": "电话号码无效。"},
    "date": {"en": "Not a valid date (YYYY-MM-DD).", "zh": "日期无效（格式为 YYYY-MM-DD）。"},
    "datetime": {"en": "Not a valid date-time (ISO 8601 with a UTC offset).",
                 "zh": "日期时间无效（需为带时区偏移的 ISO 8601 格式）。"},
    "too_large": {"en": "Too large: at most {digits} digits before the decimal point.",
                  "zh": "数值过大：整数部分最多 {digits} 位。"},
    "precision": {"en": "At most {precision} decimal places.", "zh": "最多 {precision} 位小数。"},
    "reference": {"en": "No {target} with id {value!r}.", "zh": "不存在编号为 {value!r} 的{target}。"},
    "stage": {"en": "Unknown stage {value!r}.", "zh": "未知阶段 {value!r}。"},
    "transition": {"en": "Cannot move from stage '{old}' to '{new}'.", "zh": "不能从阶段「{old}」转到「{new}」。"},
    "stage_entry": {"en": "A new {entity} cannot start in stage '{stage}' (it may start in: {allowed}).",
                    "zh": "新建的{entity}不能直接处于阶段「{stage}」（可用的起始阶段：{allowed}）。"},
    "stage_action_only": {"en": "Stage '{stage}' is set by the {action} action.",
                          "zh": "阶段「{stage}」只能通过{action}操作进入。"},
    "stage_role": {"en": "Only {roles} may move a record to stage '{stage}'; your role may not.",
                   "zh": "只有{roles}可以将记录推进到阶段「{stage}」，您的角色无此权限。"},
    "gate_required": {"en": "Required to enter stage '{stage}'.", "zh": "进入阶段「{stage}」时必填。"},
    "gate_condition": {"en": "The conditions to enter stage '{stage}' are not met.",
                       "zh": "不满足进入阶段「{stage}」的条件。"},
    "rule": {"en": "The record does not meet a rule of its definition.", "zh": "记录不符合业务规则。"},
    "expression_limit": {"en": "A computed value exceeded a limit: {detail}", "zh": "计算结果超出限制。"},
    "filter_op": {"en": "This field cannot be filtered with {op!r}.", "zh": "此字段不能使用 {op!r} 筛选。"},
    "no_such_field": {"en": "no such field", "zh": "没有此字段"},
    "computed_field": {"en": "it is computed when read (a formula or a lookup), so lists cannot filter on it",
                       "zh": "该字段在读取时计算（公式或查找字段），列表无法按其筛选"},
    "unknown_operator": {"en": "unknown operator {op!r} (use {operators})", "zh": "未知运算符 {op!r}（可用：{operators}）"},
    "not_found": {"en": "No {entity} with id {id!r}.", "zh": "不存在编号为 {id!r} 的{entity}。"},
    "unknown_entity": {"en": "Unknown entity {entity!r}.", "zh": "未知对象 {entity!r}。"},
    "stale_version": {"en": "The record was changed by someone else (your version {sent}, current {current}). "
                            "Reload it and apply your change again.",
                      "zh": "记录已被他人修改（您的版本 {sent}，当前 {current}）。请刷新后重试。"},
    "version_required": {"en": "Send the version you read (If-Match header or \"version\" in the body).",
                         "zh": "请提供读取时的版本（If-Match 请求头或请求体中的 \"version\"）。"},
    "duplicate": {"en": "A {entity} with the same {fields} already exists.",
                  "zh": "已存在{fields}相同的{entity}。"},
    "referenced": {"en": "Cannot delete: {other} records refer to it through '{field}'.",
                   "zh": "无法删除：有{other}记录通过「{field}」引用它。"},
    "invalid_record": {"en": "The record has invalid fields.", "zh": "记录包含无效字段。"},
    "bad_filter": {"en": "Cannot filter on {field!r}: {detail}", "zh": "无法按 {field!r} 筛选：{detail}"},
    "bad_sort": {"en": "Cannot sort on {field!r}.", "zh": "无法按 {field!r} 排序。"},
    "bad_cursor": {"en": "The cursor is not valid for this list.", "zh": "分页游标无效。"},
    "filter_value": {"en": "This operator needs a value.", "zh": "此运算符需要一个值。"},
    "filter_values": {"en": "At most {max} values.", "zh": "最多 {max} 个值。"},
    "bad_paging": {"en": "{detail}", "zh": "{detail}"},
    "bad_payload": {"en": "{detail}", "zh": "{detail}"},
    "bad_credentials": {"en": "Wrong username or password.", "zh": "用户名或密码错误。"},
    "unauthenticated": {"en": "Authentication required.", "zh": "需要登录。"},
    "forbidden": {"en": "Not allowed.", "zh": "无权操作。"},
    "forbidden_action": {"en": "You may not {action} this {entity}.", "zh": "您无权{action}此{entity}。"},
    "forbidden_fields": {"en": "You may not write these fields: {fields}.", "zh": "您无权修改这些字段：{fields}。"},
    "not_writable": {"en": "You may not change this field.", "zh": "您无权修改此字段。"},
    "not_pooled": {"en": "{entity} records have no public pool.", "zh": "{entity}没有公海。"},
    "already_owned": {"en": "Someone else has already claimed this record.", "zh": "该记录已被他人领取。"},
    "assign_target": {"en": "You may not give records to that user.", "zh": "您无权把记录分配给该用户。"},
    "too_many_attempts": {"en": "Too many failed logins; try again in {minutes} minutes.",
                          "zh": "登录失败次数过多，请 {minutes} 分钟后再试。"},
    # -- HTTP-level answers -------------------------------------------------------------------
    "internal_error": {"en": "Internal error (request {request_id}).", "zh": "服务器内部错误（请求 {request_id}）。"},
    "session_expired": {"en": "Your session expired; please sign in again.", "zh": "会话已过期，请重新登录。"},
    "http_404": {"en": "There is nothing at this address.", "zh": "此地址不存在。"},
    "http_405": {"en": "This address does not accept {method} requests.", "zh": "此地址不接受 {method} 请求。"},
    "http_413": {"en": "The request is too large.", "zh": "请求过大。"},
    "http_415": {"en": "This content type is not accepted here.", "zh": "此处不接受该内容类型。"},
    "http_error": {"en": "The request could not be served (HTTP {status}).", "zh": "无法处理该请求（HTTP {status}）。"},
    "csrf": {"en": "The form is missing its security token or it has expired; reload the page.",
             "zh": "表单缺少安全令牌或令牌已过期，请刷新页面。"},
    # -- malformed requests (details of bad_payload / bad_paging) --------------------------------
    "json_required": {"en": "Send a JSON body with Content-Type: application/json.",
                      "zh": "请发送 JSON 请求体（Content-Type: application/json）。"},
    "json_invalid": {"en": "The body is not valid JSON (line {line}, column {column}).",
                     "zh": "请求体不是有效的 JSON（第 {line} 行第 {column} 列）。"},
    "json_encoding": {"en": "The body is not UTF-8 text.", "zh": "请求体不是 UTF-8 文本。"},
    "json_depth": {"en": "The JSON is nested more than {max} levels deep.", "zh": "JSON 嵌套超过 {max} 层。"},
    "json_surrogate": {"en": "{pointer}: the text holds a lone UTF-16 surrogate, which is not a character.",
                       "zh": "{pointer}：文本含有孤立的 UTF-16 代理项，不是有效字符。"},
    "json_object": {"en": "The body must be a JSON object.", "zh": "请求体必须是 JSON 对象。"},
    "not_text": {"en": "{name} must be a string.", "zh": "{name}必须是字符串。"},
    "too_long": {"en": "{name} is longer than {max} characters.", "zh": "{name}超过 {max} 个字符。"},
    "has_nul": {"en": "{name} contains a NUL character.", "zh": "{name}含有空字符（NUL）。"},
    "has_surrogate": {"en": "{name} contains a lone UTF-16 surrogate.", "zh": "{name}含有孤立的 UTF-16 代理项。"},
    "whole_number": {"en": "{name} must be a whole number.", "zh": "{name} 必须是整数。"},
    "flag": {"en": "{name} must be true or false.", "zh": "{name} 必须是 true 或 false。"},
    "unknown_parameter": {"en": "Unknown query parameter {name!r}.", "zh": "未知的查询参数 {name!r}。"},
    "limit_range": {"en": "limit must be between 1 and {max}.", "zh": "limit 必须在 1 到 {max} 之间。"},
    "page_range": {"en": "page must be between 1 and {max}, and not combined with cursor (the cursor pages to "
                         "any depth).", "zh": "page 必须在 1 到 {max} 之间，且不能与 cursor 同时使用（cursor 可翻到任意深度）。"},
    "too_many_filters": {"en": "At most {max} filters.", "zh": "最多 {max} 个筛选条件。"},
    "owner_payload": {"en": 'Send {{"owner": "<user id>"}} (or null for the public pool).',
                      "zh": '请发送 {{"owner": "<用户编号>"}}（或 null 表示放回公海）。'},
    "no_owner": {"en": "{entity} records have no owner.", "zh": "{entity}没有负责人。"},
    "explain_params": {"en": "entity and action are required.", "zh": "必须提供 entity 和 action。"},
    "unknown_action": {"en": "Unknown action {name!r} (one of {choices}).", "zh": "未知操作 {name!r}（可用：{choices}）。"},
    "no_field": {"en": "{entity} has no field {name!r}.", "zh": "{entity}没有字段 {name!r}。"},
    "file_required": {"en": "Send the file as multipart/form-data in a field named 'file'.",
                      "zh": "请以 multipart/form-data 格式、在名为 file 的字段中上传文件。"},
    "file_empty": {"en": "The file is empty.", "zh": "文件为空。"},
    "file_too_large": {"en": "The file is larger than {max} MiB.", "zh": "文件超过 {max} MiB。"},
    "team_exists": {"en": "A team named {name!r} exists already.", "zh": "已存在名为 {name!r} 的团队。"},
    "user_exists": {"en": "A user named {name!r} exists already.", "zh": "已存在用户名为 {name!r} 的用户。"},
    "unknown_role": {"en": "Unknown role {name!r} (known: {choices}).", "zh": "未知角色 {name!r}（可用：{choices}）。"},
    "username_length": {"en": "A username has 1 to {max} characters.", "zh": "用户名长度为 1 到 {max} 个字符。"},
    "password_length": {"en": "A password needs at least {min} characters.", "zh": "密码至少需要 {min} 个字符。"},
})

#: What a value must be (``Invalid("type", expected=...)``), by key.
EXPECTED = _frozen({
    "value": {"en": "a valid value", "zh": "有效值"},
    "text": {"en": "text", "zh": "文本"},
    "text_without_nul": {"en": "text without NUL characters", "zh": "不含空字符的文本"},
    "integer": {"en": "an integer", "zh": "整数"},
    "integer_64": {"en": "a 64-bit integer", "zh": "64 位以内的整数"},
    "number": {"en": "a number", "zh": "数字"},
    "boolean": {"en": "true or false", "zh": "是或否（true 或 false）"},
    "choice_list": {"en": "a list of choices", "zh": "可选值的列表"},
    "id": {"en": "an id", "zh": "记录编号"},
    "geo": {"en": '{"lat": -90..90, "lon": -180..180}', "zh": '坐标 {"lat": -90..90, "lon": -180..180}'},
    "filterable": {"en": "a field that can be filtered", "zh": "可筛选的字段"},
})

#: Operations a message may name (permission actions, ownership moves, stage-setting actions).
ACTIONS = _frozen({
    "create": {"en": "create", "zh": "新建"},
    "read": {"en": "read", "zh": "查看"},
    "update": {"en": "update", "zh": "修改"},
    "delete": {"en": "delete", "zh": "删除"},
    "assign": {"en": "assign", "zh": "分配"},
    "convert": {"en": "convert", "zh": "转化"},
    "import": {"en": "import", "zh": "导入"},
    "export": {"en": "export", "zh": "导出"},
    "claim": {"en": "claim", "zh": "领取"},
    "release": {"en": "release", "zh": "退回公海"},
})

#: The platform's own objects (entities of the definitions are named by their labels instead).
OBJECTS = _frozen({
    "user": {"en": "user", "zh": "用户"},
    "team": {"en": "team", "zh": "团队"},
    "file": {"en": "file", "zh": "文件"},
    "role": {"en": "role", "zh": "角色"},
})

#: Names of request parts a message may point at.
PARTS = _frozen({
    "username": {"en": "The username", "zh": "用户名"},
    "password": {"en": "The password", "zh": "密码"},
    "url_path": {"en": "The URL path", "zh": "URL 路径"},
    "query": {"en": "A query parameter", "zh": "查询参数"},
    "file_name": {"en": "The file name", "zh": "文件名"},
    "content_type": {"en": "The content type", "zh": "内容类型"},
})

#: Parameters whose plain-word values are translated through a table.
VOCABULARY = MappingProxyType({"expected": EXPECTED, "action": ACTIONS, "entity": OBJECTS, "target": OBJECTS,
                               "other": OBJECTS, "name": PARTS})

_SEPARATORS = MappingProxyType({"zh": "、", "ja": "、"})


def pick(texts: Mapping[str, str] | None, locale: str | None = FALLBACK_LOCALE) -> str:
    """The text for ``locale`` ("zh-CN" → "zh"), else the fallback locale's, else any text present."""
    if not texts:
        return ""
    locale = locale or FALLBACK_LOCALE
    language = locale.replace("_", "-").split("-")[0]
    for candidate in (locale, language, FALLBACK_LOCALE):
        text = texts.get(candidate)
        if text:
            return text
    return next((t for t in texts.values() if t), "")


class _Params(dict):
    """Format arguments that show ``?`` for a parameter the raiser did not give."""

    def __missing__(self, key):
        return "?"


@dataclass(frozen=True, slots=True)
class Message:
    """A translatable message: a template key and its parameters (key "custom": the definition's own
    per-locale text in ``params["text"]``)."""

    key: str
    params: dict = field(default_factory=dict)

    def render(self, locale: str | None = FALLBACK_LOCALE) -> str:
        locale = locale if isinstance(locale, str) and locale else FALLBACK_LOCALE
        if self.key == "custom":
            text = self.params.get("text")
            return pick(text, locale) if isinstance(text, Mapping) and any(text.values()) else \
                Message("rule").render(locale)
        templates = TEMPLATES.get(self.key)
        if templates is None:
            return self.key
        template = pick(templates, locale)
        params = _Params({name: _param(name, value, locale) for name, value in self.params.items()})
        try:
            return string.Formatter().vformat(template, (), params)
        except (ValueError, IndexError, AttributeError, TypeError):  # a malformed template: never fail the caller
            return template


def _param(name: str, value, locale: str):
    if isinstance(value, Message):
        return value.render(locale)
    if isinstance(value, Mapping):
        return pick(value, locale)
    if isinstance(value, tuple):
        separator = _SEPARATORS.get(locale.replace("_", "-").split("-")[0], ", ")
        return separator.join(str(_param(name, item, locale)) for item in value)
    if isinstance(value, str):
        terms = VOCABULARY.get(name)
        if terms is not None and value in terms:
            return pick(terms[value], locale)
    return value
