"""The rule format and its validation: everything is checked when a rule is saved, not when it runs.

A rule definition (JSON, or YAML through `threadline rules export|import`)::

    name: Welcome a new web-form lead
    priority: 10              # lower runs first; `stop` actions end the chain for that event
    when: {event: form.submitted, channel: web}
    if: {all: [{field: contact.lifecycle, op: eq, value: lead}]}
    after: {delay: 2h, cancel_on: [message.sent], business_hours: default}   # optional
    at: {cron: "0 9 * * *", timezone: Europe/Moscow}                          # optional
    then:
      - send_template: {template: welcome, channel: email}
      - create_task: {title: Call back, type: call, due_in: 15m, assignee: responsible}
      - assign_conversation: {assignee: round_robin, team: [<user id>, ...]}
      - add_tag: web-lead
      - set_attribute: {key: segment, value: warm}
      - move_deal: {stage: qualified}
      - notify: {user: responsible, text: "New lead {{ contact.display_name }}", email: true}
      - webhook: {url: "https://example.com/hook", secret: "..."}
      - stop: true
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from threadline.domain.model.task import TaskType
from threadline.triggers.conditions import ConditionError, parse_duration, validate_condition
from threadline.triggers.destinations import DestinationPolicy, DestinationRefused
from threadline.triggers.events import DERIVED

MAX_ACTIONS = 20
ASSIGNEE_MODES = ("responsible", "round_robin", "least_busy", "user", "unassigned")
# `channel`: the type follows the conversation's channel (an SMS thread gets an SMS task).
TASK_TYPES = (*(t.value for t in TaskType), "channel")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")


class RuleError(ValueError):
    """A rule that cannot be saved; `path` names the offending part (``then[1].create_task``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def validate_rule(
    definition: dict[str, Any],
    template_exists: Callable[[str], bool] | None = None,
    *,
    destinations: DestinationPolicy | None = None,
) -> dict[str, Any]:
    """Check a definition and return it normalised (defaults filled in).

    `destinations` is the operator's webhook allow-list: with it, a webhook to an
    internal address literal or ``localhost`` is refused here (every save path of the
    services passes it); the webhook worker checks the resolved address at send time
    whatever was saved.
    """
    if not isinstance(definition, dict):
        raise RuleError("rule", "a rule is an object")
    unknown = set(definition) - {"name", "priority", "when", "if", "after", "at", "then"}
    if unknown:
        raise RuleError(sorted(unknown)[0], "unknown part of a rule")
    definition = _unanswered_sugar(definition)
    name = str(definition.get("name", "")).strip()
    if not name or len(name) > 200:
        raise RuleError("name", "a rule needs a name of 1 to 200 characters")
    priority = definition.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise RuleError("priority", "a whole number")
    when = _when(definition.get("when"), "at" in definition)
    condition = definition.get("if")
    if condition is not None:
        try:
            validate_condition(condition)
        except ConditionError as error:
            raise RuleError(f"if{_sub(error)}", _message(error)) from None
    after = _after(definition.get("after"))
    at = _at(definition.get("at"))
    then = definition.get("then")
    if not isinstance(then, list) or not then:
        raise RuleError("then", "a rule needs at least one action")
    if len(then) > MAX_ACTIONS:
        raise RuleError("then", f"at most {MAX_ACTIONS} actions")
    actions = [
        _action(action, f"then[{i}]", template_exists, destinations)
        for i, action in enumerate(then)
    ]
    normalised: dict[str, Any] = {"name": name, "priority": priority, "when": when}
    if condition is not None:
        normalised["if"] = condition
    if after is not None:
        normalised["after"] = after
    if at is not None:
        normalised["at"] = at
    normalised["then"] = actions
    size = len(json.dumps(normalised, ensure_ascii=False, default=str))
    if size > MAX_DEFINITION_BYTES:
        raise RuleError("rule", f"at most {MAX_DEFINITION_BYTES} bytes as JSON (this is {size})")
    return normalised


def _unanswered_sugar(definition: Any) -> Any:
    """``when: {event: conversation.unanswered, unanswered_for: 2h}`` is a delayed rule on
    every inbound message, cancelled by the reply: written the long way, it is checkable."""
    when = definition.get("when") if isinstance(definition, dict) else None
    if isinstance(when, str):
        when = {"event": when}
    if not isinstance(when, dict) or when.get("event") != "conversation.unanswered":
        return definition
    delay = when.get("unanswered_for")
    if not delay:
        raise RuleError("when.unanswered_for", "how long, e.g. 2h")
    if definition.get("after"):
        raise RuleError("after", "conversation.unanswered already waits; drop `after`")
    rest = {k: v for k, v in when.items() if k not in ("event", "unanswered_for")}
    return {
        **definition,
        "when": {"event": "message.received", **rest},
        "after": {"delay": delay, "cancel_on": ["message.sent"]},
    }


def _sub(error: ConditionError) -> str:
    path = str(getattr(error, "path", "") or "")
    if not path:
        return ""
    return path if path.startswith((".", "[")) else "." + path


def _message(error: ConditionError) -> str:
    return str(getattr(error, "message", "") or error)


def _when(when: Any, scheduled: bool) -> dict[str, Any]:
    if when is None and scheduled:
        return {"event": "schedule"}
    if isinstance(when, str):
        when = {"event": when}
    if not isinstance(when, dict) or not isinstance(when.get("event"), str):
        raise RuleError("when.event", "name the event, e.g. message.received")
    event = when["event"]
    if event not in DERIVED and not _EVENT_NAME.match(event):
        raise RuleError("when.event", f"unknown event {event!r}")
    unknown = set(when) - {"event", "channel", "attribute", "within"}
    if unknown:
        raise RuleError(f"when.{sorted(unknown)[0]}", "unknown filter")
    out: dict[str, Any] = {"event": event}
    if when.get("channel"):
        out["channel"] = _string("when.channel", when["channel"])
    if when.get("attribute"):  # birthday: which date attribute (default `birthday`)
        out["attribute"] = _string("when.attribute", when["attribute"])
    if when.get("within"):  # task.due_soon: how far ahead (default 1h)
        _duration("when.within", when["within"])
        out["within"] = when["within"]
    return out


def _duration(path: str, value: Any) -> None:
    try:
        parse_duration(str(value))
    except (ValueError, ConditionError) as error:
        raise RuleError(path, str(error)) from None


def _after(after: Any) -> dict[str, Any] | None:
    if after is None:
        return None
    if isinstance(after, str):
        after = {"delay": after}
    if not isinstance(after, dict) or "delay" not in after:
        raise RuleError("after.delay", "a delay such as 15m, 2h or 3d")
    _duration("after.delay", after["delay"])
    cancel_on = after.get("cancel_on", [])
    if not isinstance(cancel_on, list) or not all(isinstance(c, str) for c in cancel_on):
        raise RuleError("after.cancel_on", "a list of event names")
    out = {"delay": after["delay"], "cancel_on": cancel_on}
    if after.get("business_hours"):
        out["business_hours"] = _string("after.business_hours", after["business_hours"])
    return out


def _at(at: Any) -> dict[str, Any] | None:
    if at is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from croniter import croniter

    if not isinstance(at, dict) or not isinstance(at.get("cron"), str):
        raise RuleError("at.cron", "a cron expression such as '0 9 * * *'")
    if not croniter.is_valid(at["cron"]):
        raise RuleError("at.cron", f"not a cron expression: {at['cron']!r}")
    timezone = str(at.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError("at.timezone", f"unknown time zone {timezone!r}") from None
    return {"cron": at["cron"], "timezone": timezone}


# Every action names the keys it takes and the type of each: nothing else reaches the log.
ACTION_KEYS: dict[str, frozenset[str]] = {
    "send_template": frozenset({"template", "channel"}),
    "create_task": frozenset({"title", "type", "due_in", "assignee", "user_id", "team", "reply"}),
    "assign_conversation": frozenset({"assignee", "user_id", "team"}),
    "set_attribute": frozenset({"key", "value"}),
    "move_deal": frozenset({"stage"}),
    "notify": frozenset({"text", "user", "email", "assignee", "user_id", "team"}),
    "webhook": frozenset({"url", "secret"}),
}
MAX_NAME = 200  # a template slug, channel, tag, attribute key, stage, duration, assignee
MAX_TEXT = 2_000  # a task title or a notification (a template)
MAX_URL = 2_000
MAX_SECRET = 500
MAX_TEAM = 200
MAX_VALUE_ITEMS = 100
MAX_DEFINITION_BYTES = 262_144  # one rule as JSON


def _spec(kind: str, spec: Any, here: str, what: str, what_at: str = "") -> dict[str, Any]:
    """The action's object, refusing keys the action does not take."""
    if not isinstance(spec, dict):
        raise RuleError(f"{here}{what_at}", what)
    unknown = sorted(str(key) for key in spec if key not in ACTION_KEYS[kind])
    if unknown:
        raise RuleError(
            f"{here}.{unknown[0]}", f"unknown; {kind} takes {', '.join(sorted(ACTION_KEYS[kind]))}"
        )
    return spec


def _string(path: str, value: Any, limit: int = MAX_NAME, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise RuleError(path, "text" if required else "text (may be empty)")
    if len(value) > limit:
        raise RuleError(path, f"at most {limit} characters")
    return value


def _optional(spec: dict[str, Any], key: str, path: str, limit: int = MAX_NAME) -> None:
    if key in spec and spec[key] is not None:
        _string(f"{path}.{key}", spec[key], limit)


def _scalar_value(path: str, value: Any) -> Any:
    """An attribute value: text, a number, true/false, null, or a list of those."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise RuleError(path, "a finite number")
        return value
    if isinstance(value, str):
        return _string(path, value, MAX_TEXT, required=False)
    if isinstance(value, list):
        if len(value) > MAX_VALUE_ITEMS:
            raise RuleError(path, f"at most {MAX_VALUE_ITEMS} items")
        return [_scalar_value(f"{path}[{i}]", item) for i, item in enumerate(value)]
    raise RuleError(path, "text, a number, true/false, null or a list of those")


def _action(
    action: Any,
    path: str,
    template_exists: Callable[[str], bool] | None,
    destinations: DestinationPolicy | None = None,
) -> dict[str, Any]:
    if not isinstance(action, dict) or len(action) != 1:
        raise RuleError(path, "each action is an object with one key, e.g. {add_tag: vip}")
    ((kind, spec),) = action.items()
    here = f"{path}.{kind}"
    if kind == "send_template":
        if isinstance(spec, str):
            spec = {"template": spec}
        spec = _spec(kind, spec, here, "name the template")
        if not spec.get("template"):
            raise RuleError(here, "name the template")
        template = _string(f"{here}.template", spec["template"])
        channel = _string(f"{here}.channel", spec.get("channel", "same"))
        if template_exists is not None and not template_exists(template):
            raise RuleError(f"{here}.template", f"no template {template!r}")
        return {kind: {"template": template, "channel": channel}}
    if kind == "create_task":
        spec = _spec(kind, spec, here, "a task needs a title", ".title")
        if not isinstance(spec.get("title"), str) or not spec["title"].strip():
            raise RuleError(f"{here}.title", "a task needs a title")
        _string(f"{here}.title", spec["title"], MAX_TEXT)
        _text_template(f"{here}.title", spec["title"])
        if spec.get("type", "other") not in TASK_TYPES:
            raise RuleError(f"{here}.type", f"one of {', '.join(TASK_TYPES)}")
        _optional(spec, "due_in", here)
        _duration(f"{here}.due_in", spec.get("due_in", "1d"))
        if "reply" in spec and not isinstance(spec["reply"], bool):
            raise RuleError(f"{here}.reply", "true or false")
        return {kind: {**spec, **_assignee(spec, here)}}
    if kind == "assign_conversation":
        spec = _spec(kind, spec, here, "an object with `assignee`")
        return {kind: _assignee(spec, here)}
    if kind == "add_tag":
        if not isinstance(spec, str) or not spec.strip():
            raise RuleError(here, "the tag to add")
        return {kind: _string(here, spec).strip().lower()}
    if kind == "set_attribute":
        spec = _spec(kind, spec, here, "the attribute to set", ".key")
        if not spec.get("key"):
            raise RuleError(f"{here}.key", "the attribute to set")
        key = _string(f"{here}.key", spec["key"])
        return {kind: {"key": key, "value": _scalar_value(f"{here}.value", spec.get("value"))}}
    if kind == "move_deal":
        spec = _spec(kind, spec, here, "the stage to move the deal to", ".stage")
        if not spec.get("stage"):
            raise RuleError(f"{here}.stage", "the stage to move the deal to")
        return {kind: {"stage": _string(f"{here}.stage", spec["stage"])}}
    if kind == "notify":
        spec = _spec(kind, spec, here, "what to tell the operator", ".text")
        if not isinstance(spec.get("text"), str) or not spec["text"]:
            raise RuleError(f"{here}.text", "what to tell the operator")
        _string(f"{here}.text", spec["text"], MAX_TEXT)
        _text_template(f"{here}.text", spec["text"])
        _optional(spec, "user", here)
        if "email" in spec and not isinstance(spec["email"], bool):
            raise RuleError(f"{here}.email", "true or false")
        return {
            kind: {**spec, **_assignee({"assignee": spec.get("user", "responsible"), **spec}, here)}
        }
    if kind == "webhook":
        spec = _spec(kind, spec, here, "an http(s) URL", ".url")
        url = spec.get("url", "")
        if not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
            raise RuleError(f"{here}.url", "an http(s) URL")
        _string(f"{here}.url", url, MAX_URL)
        if destinations is not None:
            try:
                destinations.check_at_save(url)
            except DestinationRefused as refusal:
                raise RuleError(f"{here}.url", str(refusal)) from None
        secret = spec.get("secret") or ""
        _string(f"{here}.secret", secret, MAX_SECRET, required=False)
        return {kind: {"url": url, "secret": secret}}
    if kind == "stop":
        if spec is not True:
            raise RuleError(here, "stop: true")
        return {"stop": True}
    raise RuleError(here, "unknown action")


def _text_template(path: str, text: str) -> None:
    """Task titles and notifications are templates too: checked now, not when they fire."""
    from threadline.triggers.templates import TemplateError, validate_template

    try:
        validate_template({"default": {"text": text}})
    except TemplateError as error:
        line = f" (line {error.line})" if error.line else ""
        raise RuleError(path, f"{error.message}{line}") from None


def _assignee(spec: dict[str, Any], path: str) -> dict[str, Any]:
    assignee = _string(f"{path}.assignee", spec.get("assignee", "responsible"))
    mode, _, rest = assignee.partition(":")
    if mode not in ASSIGNEE_MODES:
        raise RuleError(f"{path}.assignee", f"one of {', '.join(ASSIGNEE_MODES)}")
    out: dict[str, Any] = {"assignee": mode}
    if mode == "user":
        user = rest or spec.get("user_id")
        try:
            out["user_id"] = str(UUID(str(user)))
        except ValueError:
            raise RuleError(f"{path}.user_id", "a user id") from None
    team = spec.get("team")
    if mode in ("round_robin", "least_busy") or (mode == "responsible" and team):
        # `responsible` with a team: the contact's owner, else the least busy of the team.
        if not isinstance(team, list) or not team:
            raise RuleError(f"{path}.team", "a list of user ids (or role:operator) to share it")
        if len(team) > MAX_TEAM:
            raise RuleError(f"{path}.team", f"at most {MAX_TEAM} members")
        out["team"] = [_member(member, f"{path}.team") for member in team]
    return out


def _member(member: Any, path: str) -> str:
    """A user id, or ``role:<role>`` for every active user with that role."""
    text = _string(path, member)
    if text.startswith("role:"):
        if text[5:] not in ("admin", "manager", "operator"):
            raise RuleError(path, "role:admin, role:manager or role:operator")
        return text
    try:
        return str(UUID(text))
    except ValueError:
        raise RuleError(path, f"{text!r} is not a user id or role:<role>") from None


def when_matches(definition: dict[str, Any], names: tuple[str, ...], channel: str | None) -> bool:
    when = definition["when"]
    if when["event"] not in names:
        return False
    return not when.get("channel") or when["channel"] == channel


def next_run(definition: dict[str, Any], after: datetime) -> datetime | None:
    """The next time a scheduled (`at`) rule runs, in UTC."""
    at = definition.get("at")
    if not at:
        return None
    from zoneinfo import ZoneInfo

    from croniter import croniter

    zone = ZoneInfo(at["timezone"])
    local = after.astimezone(zone)
    result: datetime = croniter(at["cron"], local).get_next(datetime)
    return result
