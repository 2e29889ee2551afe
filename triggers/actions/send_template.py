"""``send_template``: write to the event's contact with a template, as an automatic message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.domain.model.conversation import Conversation, conversation_id_for
from threadline.domain.model.message import Message
from threadline.domain.model.reply_channels import answers
from threadline.triggers.actions.base import (
    ApplyContext,
    PrepareContext,
    PreparedAction,
    RuleAction,
    register,
)
from threadline.triggers.events import TriggerEvent
from threadline.triggers.outbound import Refusal
from threadline.triggers.rule_checks import RuleError, SaveChecks, action_object, string


@register
@dataclass(frozen=True)
class SendTemplate(RuleAction):
    kind: ClassVar[str] = "send_template"
    keys: ClassVar[frozenset[str]] = frozenset({"template", "channel"})

    template: str
    channel: str = "same"  # or a channel name; "same" answers the way a reply would

    @classmethod
    def validate(cls, spec: Any, here: str, checks: SaveChecks) -> Any:
        if isinstance(spec, str):
            spec = {"template": spec}
        spec = action_object(cls.kind, cls.keys, spec, here, "name the template")
        if not spec.get("template"):
            raise RuleError(here, "name the template")
        template = string(f"{here}.template", spec["template"])
        channel = string(f"{here}.channel", spec.get("channel", "same"))
        if checks.template_exists is not None and not checks.template_exists(template):
            raise RuleError(f"{here}.template", f"no template {template!r}")
        return {"template": template, "channel": channel}

    @classmethod
    def parse(cls, spec: Any) -> RuleAction:
        return cls(template=str(spec["template"]), channel=str(spec.get("channel", "same")))

    def prepare(self, context: PrepareContext) -> PreparedAction:
        message = context.messages.rule_message(
            self.template, self.channel, context.facts, context.effect_id
        )
        if isinstance(message, Refusal):
            return PreparedAction(self, skip=message.reason)
        return PreparedAction(self, channel=message.channel, rendered=dict(message.personal))

    def apply(self, prepared: PreparedAction, context: ApplyContext) -> dict[str, Any]:
        contact = context.contact
        if contact is None:
            return {"skipped": "no contact to write to"}
        conversation = _conversation_for(
            context.unit,
            contact,
            context.event,
            prepared.channel,
            context.actor,
            context.correlation_id,
        )
        context.unit.add(
            Message.request_send(
                id=context.effect_id,
                conversation_id=conversation.id,
                contact_id=contact.id,
                channel=prepared.channel,
                personal={
                    "text": prepared.rendered.get("text", ""),
                    "html": prepared.rendered.get("html", ""),
                    "subject": prepared.rendered.get("subject", ""),
                },
                attachments=[],
                actor=context.actor,
                correlation_id=context.correlation_id,
            )
        )
        return {"message_id": str(context.effect_id), "channel": prepared.channel}


def _conversation_for(
    unit: UnitOfWork,
    contact: Contact,
    event: TriggerEvent,
    channel: str,
    actor: str,
    correlation_id: str,
) -> Conversation:
    """The event's own conversation when the message answers it (on its channel, or on the
    channel that answers it: a form lead's e-mail welcome stays in the form's conversation),
    else the contact's thread on that channel."""
    if event.conversation_id is not None:
        own = unit.find(event.conversation_id, Conversation)
        if own is not None and answers(own.channel, channel):
            return own
    wanted = conversation_id_for(contact.id, channel, "automatic")
    existing = unit.find(wanted, Conversation)
    if existing is not None:
        return existing
    return unit.add(
        Conversation.start(
            id=wanted,
            contact_id=contact.id,
            channel=channel,
            thread_key="automatic",
            subject="",
            address=None,
            actor=actor,
            correlation_id=correlation_id,
        )
    )
