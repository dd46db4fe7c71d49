"""Error message templates by key, per locale. The engine raises keys; interfaces render them."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

TEMPLATES = MappingProxyType({
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
                         "zh": "当 {parent} 为 {parent_value!r} 时不允许 {value!r}。"},
    "email": {"en": "Not a valid email address.", "zh": "邮箱地址无效。"},
    "url": {"en": "Not a valid http(s) URL.", "zh": "网址无效（需以 http:// 或 https:// 开头）。"},
    "phone": {"en": "Not a valid phone number.", "zh": "电话号码无效。"},
    "date": {"en": "Not a valid date (YYYY-MM-DD).", "zh": "日期无效（YYYY-MM-DD）。"},
    "datetime": {"en": "Not a valid date-time (ISO 8601 with a UTC offset).",
                 "zh": "日期时间无效（ISO 8601，需带时区偏移）。"},
    "too_large": {"en": "Too large: at most {digits} digits before the decimal point.",
                  "zh": "数值过大：整数部分最多 {digits} 位。"},
    "precision": {"en": "At most {precision} decimal places.", "zh": "最多 {precision} 位小数。"},
    "reference": {"en": "No {target} with id {value!r}.", "zh": "不存在 id 为 {value!r} 的{target}。"},
    "stage": {"en": "Unknown stage {value!r}.", "zh": "未知阶段 {value!r}。"},
    "transition": {"en": "Cannot move from stage {old!r} to {new!r}.", "zh": "不能从阶段 {old!r} 转到 {new!r}。"},
    "gate_required": {"en": "Required to enter stage {stage!r}.", "zh": "进入阶段 {stage!r} 时必填。"},
    "gate_condition": {"en": "The conditions to enter stage {stage!r} are not met.",
                       "zh": "不满足进入阶段 {stage!r} 的条件。"},
    "expression_limit": {"en": "A computed value exceeded a limit: {detail}", "zh": "计算值超出限制：{detail}"},
    "not_found": {"en": "No {entity} with id {id!r}.", "zh": "不存在 id 为 {id!r} 的{entity}。"},
    "unknown_entity": {"en": "Unknown entity {entity!r}.", "zh": "未知对象 {entity!r}。"},
    "stale_version": {"en": "The record was changed by someone else (your version {sent}, current {current}). "
                            "Reload it and apply your change again.",
                      "zh": "记录已被他人修改（您的版本 {sent}，当前 {current}）。请刷新后重试。"},
    "version_required": {"en": "Send the version you read (If-Match header or \"version\" in the body).",
                         "zh": "请提供读取时的版本（If-Match 头或请求体中的 \"version\"）。"},
    "duplicate": {"en": "A {entity} with the same {fields} already exists.",
                  "zh": "已存在相同 {fields} 的{entity}。"},
    "referenced": {"en": "Cannot delete: {other} records refer to it through {field!r}.",
                   "zh": "无法删除：有{other}记录通过 {field!r} 引用它。"},
    "invalid_record": {"en": "The record has invalid fields.", "zh": "记录包含无效字段。"},
    "bad_filter": {"en": "Cannot filter on {field!r}: {detail}", "zh": "无法按 {field!r} 过滤：{detail}"},
    "bad_sort": {"en": "Cannot sort on {field!r}.", "zh": "无法按 {field!r} 排序。"},
    "bad_cursor": {"en": "The cursor is not valid for this list.", "zh": "分页游标无效。"},
    "bad_paging": {"en": "{detail}", "zh": "{detail}"},
    "bad_payload": {"en": "{detail}", "zh": "{detail}"},
    "bad_credentials": {"en": "Wrong username or password.", "zh": "用户名或密码错误。"},
    "unauthenticated": {"en": "Authentication required.", "zh": "需要登录。"},
    "forbidden": {"en": "Not allowed.", "zh": "无权操作。"},
    "forbidden_action": {"en": "You may not {action} this {entity}.", "zh": "您无权对此{entity}执行{action}操作。"},
    "forbidden_fields": {"en": "You may not write these fields: {fields}.", "zh": "您无权修改这些字段：{fields}。"},
    "not_writable": {"en": "You may not change this field.", "zh": "您无权修改此字段。"},
    "not_pooled": {"en": "{entity} records have no public pool.", "zh": "{entity}没有公海。"},
    "already_owned": {"en": "Someone else has already claimed this record.", "zh": "该记录已被他人领取。"},
    "assign_target": {"en": "You may not give records to that user.", "zh": "您无权把记录分配给该用户。"},
    "too_many_attempts": {"en": "Too many failed logins; try again in {minutes} minutes.",
                          "zh": "登录失败次数过多，请 {minutes} 分钟后再试。"},
})

FALLBACK_LOCALE = "en"


@dataclass(frozen=True, slots=True)
class Message:
    """A translatable message: a template key and its parameters (key "custom": the definition's own
    per-locale text in ``params["text"]``)."""

    key: str
    params: dict = field(default_factory=dict)

    def render(self, locale: str = FALLBACK_LOCALE) -> str:
        templates = self.params["text"] if self.key == "custom" else TEMPLATES[self.key]
        template = templates.get(locale) or templates.get(locale.split("-")[0]) or templates[FALLBACK_LOCALE]
        return template if self.key == "custom" else template.format(**self.params)
