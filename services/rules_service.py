"""Saving and showing rules: what the rules API, the web admin and the rules file share.

A rule is checked exactly the same way on every save path (`check_rule`: the
"does this template exist" check and the operator's webhook allow-list), and a
webhook secret written into a rule is never shown back (`redacted`): screens and
the API carry ``********``, and saving that unchanged keeps the stored secret
(`keep_secrets`).
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from threadline.domain.model.saved_segment import SavedSegment
from threadline.domain.model.template import template_id_for
from threadline.services.config import Settings
from threadline.services.webhooks import destination_policy
from threadline.triggers.rules import RuleError, validate_rule

MASK = "********"


class AggregateReader(Protocol):
    def get(self, aggregate_id: UUID) -> Any: ...


def template_exists(aggregates: AggregateReader, slug: str) -> bool:
    """Whether the log has a template with this slug (the views may not show it yet)."""
    try:
        return aggregates.get(template_id_for(slug)) is not None
    except Exception:
        return False


def check_rule(
    definition: dict[str, Any], aggregates: AggregateReader, settings: Settings
) -> dict[str, Any]:
    """The definition checked and normalised, as every save path stores it (`RuleError`)."""
    checked = validate_rule(
        definition,
        lambda slug: template_exists(aggregates, slug),
        destinations=destination_policy(settings),
    )
    check_saved_segments(checked.get("if"), aggregates)
    return checked


def check_saved_segments(condition: Any, aggregates: AggregateReader, path: str = "if") -> None:
    """Every saved segment a condition names (``{segment_id: ...}`` or a segment's
    ``segment_id``) exists and is not deleted: an unknown id refuses the rule (`RuleError`)."""
    if isinstance(condition, list):
        for i, child in enumerate(condition):
            check_saved_segments(child, aggregates, f"{path}[{i}]")
        return
    if not isinstance(condition, dict):
        return
    for key, value in condition.items():
        if key in ("all", "any"):
            check_saved_segments(value, aggregates, f"{path}.{key}")
        elif key == "not":
            check_saved_segments(value, aggregates, f"{path}.not")
        elif key == "segment_id":
            _saved_segment_exists(value, aggregates, f"{path}.segment_id")
        elif key == "segment" and isinstance(value, dict) and "segment_id" in value:
            ids = value["segment_id"]
            for one in ids if isinstance(ids, list | tuple) else [ids]:
                _saved_segment_exists(one, aggregates, f"{path}.segment.segment_id")


def _saved_segment_exists(value: Any, aggregates: AggregateReader, path: str) -> None:
    try:
        found = aggregates.get(UUID(str(value)))
    except Exception:
        found = None
    if not isinstance(found, SavedSegment) or found.deleted:
        raise RuleError(path, f"no saved segment with id {value}")


def redacted(definition: dict[str, Any]) -> dict[str, Any]:
    """Webhook secrets written into a rule are not shown back (``${NAME}`` references are)."""
    actions = []
    for action in definition.get("then", []):
        spec = action.get("webhook")
        if spec and spec.get("secret") and not str(spec["secret"]).startswith("${"):
            action = {"webhook": {**spec, "secret": MASK}}
        actions.append(action)
    return {**definition, "then": actions}


def keep_secrets(given: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A redacted secret sent back unchanged keeps the stored one (same URL, same action)."""
    stored = {
        a["webhook"]["url"]: a["webhook"].get("secret")
        for a in current.get("then", [])
        if isinstance(a, dict) and "webhook" in a
    }
    actions = []
    for action in given.get("then", []) or []:
        spec = action.get("webhook") if isinstance(action, dict) else None
        if spec and spec.get("secret") == MASK:
            action = {"webhook": {**spec, "secret": stored.get(spec.get("url"), "")}}
        actions.append(action)
    return {**given, "then": actions}
