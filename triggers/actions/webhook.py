"""``webhook``: POST what happened to a URL (the webhook worker sends it, signed if a secret is set)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from threadline.domain.model.automation import WebhookCall
from threadline.triggers.actions.base import (
    ApplyContext,
    PrepareContext,
    PreparedAction,
    RuleAction,
    register,
)
from threadline.triggers.destinations import DestinationRefused
from threadline.triggers.rule_checks import (
    MAX_SECRET,
    MAX_URL,
    RuleError,
    SaveChecks,
    action_object,
    string,
)


@register
@dataclass(frozen=True)
class Webhook(RuleAction):
    kind: ClassVar[str] = "webhook"
    keys: ClassVar[frozenset[str]] = frozenset({"url", "secret"})

    url: str
    secret: str = ""  # a literal (kept apart, see services/rule_secrets) or ``${NAME}``

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        spec = action_object(cls.kind, cls.keys, spec, here, "an http(s) URL", ".url")
        url = spec.get("url", "")
        if not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
            raise RuleError(f"{here}.url", "an http(s) URL")
        string(f"{here}.url", url, MAX_URL)
        if checks.destinations is not None:
            try:
                checks.destinations.check_at_save(url)
            except DestinationRefused as refusal:
                raise RuleError(f"{here}.url", str(refusal)) from None
        secret = spec.get("secret") or ""
        string(f"{here}.secret", secret, MAX_SECRET, required=False)
        return {"url": url, "secret": secret}

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(url=str(spec["url"]), secret=str(spec.get("secret") or ""))

    def prepare(self, context: PrepareContext) -> PreparedAction:
        event = context.event
        return PreparedAction(
            self,
            rendered={
                "rule_id": str(context.rule_id),
                "rule": context.rule_name,
                "event": event.names[0],
                "cause": event.cause_key,
                "contact_id": str(event.contact_id) if event.contact_id else None,
                "conversation_id": str(event.conversation_id) if event.conversation_id else None,
            },
        )

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        context.unit.add(
            WebhookCall(
                id=context.effect_id,
                url=self.url,
                payload=prepared.rendered,
                secret_set=bool(self.secret),
                actor=context.actor,
                correlation_id=context.correlation_id,
            )
        )
        return {"webhook_id": str(context.effect_id)}
