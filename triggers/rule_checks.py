"""The small checks a rule's parts share when it is saved, and the error that names the place.

Every check raises `RuleError` with the path of the offending part
(``then[1].create_task.due_in``): the API, the web editor and the rules file import
show that path, so its text is part of the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from threadline.triggers.conditions import ConditionError, parse_duration
from threadline.triggers.destinations import DestinationPolicy
from threadline.triggers.templates import TemplateError, validate_template

MAX_NAME = 200  # a template slug, channel, tag, attribute key, stage, duration, assignee
MAX_TEXT = 2_000  # a task title or a notification (a template)
MAX_URL = 2_000
MAX_SECRET = 500
MAX_VALUE_ITEMS = 100


class RuleError(ValueError):
    """A rule that cannot be saved; `path` names the offending part (``then[1].create_task``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class SaveChecks:
    """What checking a rule asks of the outside world: does a template exist, may a URL be called.

    Either may be None (then that check is skipped, as in unit tests of the format).
    """

    template_exists: Callable[[str], bool] | None = None
    destinations: DestinationPolicy | None = None


def string(path: str, value: Any, limit: int = MAX_NAME, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise RuleError(path, "text" if required else "text (may be empty)")
    if len(value) > limit:
        raise RuleError(path, f"at most {limit} characters")
    return value


def optional_string(spec: dict[str, Any], key: str, path: str, limit: int = MAX_NAME) -> None:
    if key in spec and spec[key] is not None:
        string(f"{path}.{key}", spec[key], limit)


def duration(path: str, value: Any) -> None:
    try:
        parse_duration(str(value))
    except (ValueError, ConditionError) as error:
        raise RuleError(path, str(error)) from None


def action_object(
    kind: str, keys: frozenset[str], spec: Any, here: str, what: str, what_at: str = ""
) -> dict[str, Any]:
    """The action's object, refusing keys the action does not take."""
    if not isinstance(spec, dict):
        raise RuleError(f"{here}{what_at}", what)
    unknown = sorted(str(key) for key in spec if key not in keys)
    if unknown:
        raise RuleError(f"{here}.{unknown[0]}", f"unknown; {kind} takes {', '.join(sorted(keys))}")
    return spec


def scalar_value(path: str, value: Any) -> Any:
    """An attribute value: text, a number, true/false, null, or a list of those."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise RuleError(path, "a finite number")
        return value
    if isinstance(value, str):
        return string(path, value, MAX_TEXT, required=False)
    if isinstance(value, list):
        if len(value) > MAX_VALUE_ITEMS:
            raise RuleError(path, f"at most {MAX_VALUE_ITEMS} items")
        return [scalar_value(f"{path}[{i}]", item) for i, item in enumerate(value)]
    raise RuleError(path, "text, a number, true/false, null or a list of those")


def text_template(path: str, text: str) -> None:
    """Task titles and notifications are templates too: checked now, not when they fire."""
    try:
        validate_template({"default": {"text": text}})
    except TemplateError as error:
        line = f" (line {error.line})" if error.line else ""
        raise RuleError(path, f"{error.message}{line}") from None
