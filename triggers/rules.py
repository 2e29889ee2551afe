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
      - move_deal: {stage: <stage id>, reason: Too expensive}   # reason: for a lost stage
      - notify: {user: responsible, text: "New lead {{ contact.display_name }}", email: true}
      - webhook: {url: "https://example.com/hook", secret: "..."}
      - stop: true

Each `then` item is checked by the action class its key names (`triggers/actions/`, one
module per action); `when.event` names come from the table in `trigger_names`. What
`validate_rule` returns is the JSON the log stores; `parse_rule` (or `RuleDefinition.parse`
on a stored definition) gives the typed form the runner uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from threadline.triggers.actions.registry import action_class
from threadline.triggers.conditions import ConditionError, validate_condition
from threadline.triggers.definition import At, RuleDefinition
from threadline.triggers.destinations import DestinationPolicy
from threadline.triggers.rule_checks import RuleError as RuleError
from threadline.triggers.rule_checks import SaveChecks, duration, string
from threadline.triggers.trigger_names import (
    AWAITED_MESSAGE,
    MONEY_AFTER,
    MONEY_BEFORE,
    MONEY_DATES,
    is_awaited,
    is_trigger_name,
)

MAX_ACTIONS = 20
MAX_DEFINITION_BYTES = 262_144  # one rule as JSON
# The shape of an event name; a well-formed name not (yet) in `trigger_names` is accepted,
# as before the table existed (a rule may wait for events of a later release).
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")


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
    checks = SaveChecks(template_exists, destinations)
    actions = [_action(action, f"then[{i}]", checks) for i, action in enumerate(then)]
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
    if is_awaited(event):
        # Listed by earlier releases but made by nothing yet: a new rule on it would never
        # fire. Rules stored before are not re-validated when loaded, so they stay readable.
        raise RuleError("when.event", f"{event} {AWAITED_MESSAGE}")
    if not is_trigger_name(event) and not _EVENT_NAME.match(event):
        raise RuleError("when.event", f"unknown event {event!r}")
    unknown = set(when) - {"event", "channel", "attribute", "within", *MONEY_WHEN}
    if unknown:
        raise RuleError(f"when.{sorted(unknown)[0]}", "unknown filter")
    out: dict[str, Any] = {"event": event}
    if when.get("channel"):
        out["channel"] = string("when.channel", when["channel"])
    if when.get("attribute"):  # birthday: which date attribute (default `birthday`)
        out["attribute"] = string("when.attribute", when["attribute"])
    if when.get("within"):  # task.due_soon: how far ahead (default 1h)
        duration("when.within", when["within"])
        out["within"] = when["within"]
    out.update(_money_when(event, when))
    return out


MONEY_WHEN = ("days_before", "days_after", "business_days", "calendar")
MAX_DAYS = 366
_YES = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False,
        "off": False, "": False}  # fmt: skip


def _money_when(event: str, when: dict[str, Any]) -> dict[str, Any]:
    """The day count of a money-flow date trigger (`money_scans`), checked and normalised.

    ``days_before`` goes with a "due" name, ``days_after`` with an "overdue" one (and with
    ``supplier_order.unconfirmed``: days since it was sent); ``business_days: true`` counts
    them on `calendar` (default ``default``). The web form sends them as text.
    """
    given = {key: when[key] for key in MONEY_WHEN if when.get(key) not in (None, "")}
    if not given:
        return {}
    if event not in MONEY_DATES:
        raise RuleError(f"when.{sorted(given)[0]}", f"only for {', '.join(MONEY_DATES)}")
    out: dict[str, Any] = {}
    for key, names in (("days_before", MONEY_BEFORE), ("days_after", MONEY_AFTER)):
        if key not in given:
            continue
        if event not in names:
            other = "days_after" if key == "days_before" else "days_before"
            raise RuleError(f"when.{key}", f"{event} counts {other}")
        value = given[key]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DAYS:
            raise RuleError(f"when.{key}", f"a whole number of days from 0 to {MAX_DAYS}")
        out[key] = value
    if "business_days" in given:
        flag = given["business_days"]
        if isinstance(flag, str):
            flag = _YES.get(flag.strip().lower(), flag)
        if not isinstance(flag, bool):
            raise RuleError("when.business_days", "true or false")
        if flag:
            out["business_days"] = True
    if "calendar" in given:
        out["calendar"] = string("when.calendar", given["calendar"])
    return out


def _after(after: Any) -> dict[str, Any] | None:
    if after is None:
        return None
    if isinstance(after, str):
        after = {"delay": after}
    if not isinstance(after, dict) or "delay" not in after:
        raise RuleError("after.delay", "a delay such as 15m, 2h or 3d")
    duration("after.delay", after["delay"])
    cancel_on = after.get("cancel_on", [])
    if not isinstance(cancel_on, list) or not all(isinstance(c, str) for c in cancel_on):
        raise RuleError("after.cancel_on", "a list of event names")
    out = {"delay": after["delay"], "cancel_on": cancel_on}
    if after.get("business_hours"):
        out["business_hours"] = string("after.business_hours", after["business_hours"])
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


def _action(action: Any, path: str, checks: SaveChecks) -> dict[str, Any]:
    """One `then` item, checked and normalised by the action its key names."""
    if not isinstance(action, dict) or len(action) != 1:
        raise RuleError(path, "each action is an object with one key, e.g. {add_tag: vip}")
    ((kind, spec),) = action.items()
    here = f"{path}.{kind}"
    found = action_class(kind)
    if found is None:
        raise RuleError(here, "unknown action")
    return {kind: found.validate(spec, here, checks)}


def parse_rule(
    definition: dict[str, Any],
    template_exists: Callable[[str], bool] | None = None,
    *,
    destinations: DestinationPolicy | None = None,
) -> RuleDefinition:
    """Check a definition (as `validate_rule`) and return it typed."""
    return RuleDefinition.parse(
        validate_rule(definition, template_exists, destinations=destinations)
    )


def when_matches(
    definition: Mapping[str, Any], names: tuple[str, ...], channel: str | None
) -> bool:
    """Whether a (normalised) definition's `when` answers to an event with these names."""
    when = definition["when"]
    if when["event"] not in names:
        return False
    return not when.get("channel") or when["channel"] == channel


def next_run(at: At, after: datetime) -> datetime:
    """The next time a schedule (`at`) comes after `after`, in UTC."""
    from zoneinfo import ZoneInfo

    from croniter import croniter

    zone = ZoneInfo(at.timezone)
    local = after.astimezone(zone)
    result: datetime = croniter(at.cron, local).get_next(datetime)
    return result
