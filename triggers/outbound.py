"""The outbound composer: the one place that decides what an automatic message to a contact is.

Rules (`send_template`), campaigns, the template previews and the inbox's reply
box all write to a contact. Each of them needs the same decisions, and each
decision lives here once:

- **the survivor**: a merged contact is written to as the contact it was merged
  into (`domain.model.contact.survivor`, with its hop limit);
- **the channel**: "same" answers a conversation the way a reply to it leaves,
  else the channel the contact last wrote on, else an address they have
  (`choose_channel`); the inbox's reply box offers the same channels
  (`reply_options`);
- **opt-out**: a contact who opted out on a channel gets no automatic message there;
- **the text**: a template rendered for the contact, with their unsubscribe link;
- **the daily limit**: rule messages and campaign messages together, at most
  ``per_day`` in 24 hours per contact (`OutboundComposer.take_slot`).

One composer per process is shared by the trigger runner and the campaign
sender, so the messages one of them has just decided on count for the other
before the views show them.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from threadline.domain.model.campaign import SENDABLE_CHANNELS
from threadline.domain.model.contact import Contact, survivor
from threadline.domain.model.reply_channels import REPLY_CHANNEL
from threadline.domain.model.template import Template, template_id_for
from threadline.projections.automation import rule_message_ids_since
from threadline.projections.campaigns import campaign_message_ids_since
from threadline.projections.contact_card import identity_kinds, inbound_channels
from threadline.projections.sql import ViewReader
from threadline.triggers.events import TriggerEvent
from threadline.triggers.templates import RenderedMessage, TemplateVariants, render

DAY_SECONDS = 86_400.0
STRIPES = 64  # locks the daily-limit counts are spread over (one contact: always the same one)
# The identity a message on each sendable channel is addressed to.
IDENTITY_KIND = {"email": "email", "sms": "phone", "whatsapp": "phone", "telegram": "telegram"}
IDENTITY_LABEL = {"email": "e-mail address", "phone": "phone number", "telegram": "Telegram chat"}
# The channel each kind of identity opens, in the order "same" falls back to them.
IDENTITY_CHANNELS: tuple[tuple[str, str], ...] = (
    ("email", "email"),
    ("telegram", "telegram"),
    ("phone", "sms"),
)
# A rule never opens a conversation on a paid channel the client has not written on.
RULE_FALLBACK: tuple[tuple[str, str], ...] = (("email", "email"),)
# A campaign reaches everyone it can: an e-mail address first, then Telegram, then SMS.
CAMPAIGN_FALLBACK = IDENTITY_CHANNELS
NO_CONTACT = "no contact to write to"
NO_CHANNEL = "the contact has no channel a message can go to"


# -- what the composer reads ----------------------------------------------------------------


class AggregateReader(Protocol):
    """Reads an aggregate by id, at a version if given (the application's repository)."""

    def get(self, aggregate_id: UUID, *, version: int | None = None) -> Any: ...


class FactSource(Protocol):
    """What a template sees for an event: contact, company, conversation, operator."""

    def facts(self, event: TriggerEvent, now: datetime | None = None) -> dict[str, Any]: ...


# -- the channel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactReach:
    """What the channel choice knows of a contact.

    `wrote_on`: the channels the contact wrote on, newest first; `identity_kinds`:
    the kinds of address they have (``email``, ``phone``, ``telegram``), in card order.
    """

    contact_id: str
    wrote_on: tuple[str, ...] = ()
    identity_kinds: tuple[str, ...] = ()

    @classmethod
    def of_card(cls, card: Mapping[str, Any]) -> ContactReach:
        """From a contact card (`Queries.contact`, a rule's ``contact`` facts)."""
        written = [
            (str(row.get("last_inbound_at")), str(row["channel"]))
            for row in card.get("channels", ())
            if row.get("last_inbound_at")
        ]
        kinds: list[str] = []
        for identity in card.get("identities", ()):
            if identity["kind"] not in kinds:
                kinds.append(str(identity["kind"]))
        return cls(
            contact_id=str(card.get("id", "")),
            wrote_on=tuple(channel for _, channel in sorted(written, reverse=True)),
            identity_kinds=tuple(kinds),
        )

    def reachable_on(self, channel: str) -> bool:
        """Whether a message on `channel` has an address of this contact to go to."""
        return channel in SENDABLE_CHANNELS and IDENTITY_KIND[channel] in self.identity_kinds


def choose_channel(
    wanted: str,
    reach: ContactReach,
    conversation_channel: str | None = None,
    fallback: Sequence[tuple[str, str]] = RULE_FALLBACK,
) -> str | None:
    """The channel an automatic message goes out on, or None when there is none.

    A named channel is taken as it is. "same" answers the conversation the way a
    reply to it leaves (a web form's or the API's conversation by e-mail; the message
    still belongs to that conversation), else takes the newest channel the contact
    wrote on that can reach them, else the first address kind of `fallback` they have.
    """
    if wanted and wanted != "same":
        return wanted
    if conversation_channel:
        return REPLY_CHANNEL.get(conversation_channel, conversation_channel)
    for written in reach.wrote_on:
        candidate = REPLY_CHANNEL.get(written, written)
        if reach.reachable_on(candidate):
            return candidate
    return next((channel for kind, channel in fallback if kind in reach.identity_kinds), None)


def reply_options(
    conversation_channel: str, channels: Sequence[str], identity_kinds: Sequence[str]
) -> list[str]:
    """The channels an operator can answer on: the conversation's own first, then every
    other sendable one the client has used or has an address for."""
    options = [conversation_channel]
    opened = dict(IDENTITY_CHANNELS)
    found = [*channels, *(opened[kind] for kind in identity_kinds if kind in opened)]
    for channel in found:
        if channel in SENDABLE_CHANNELS and channel not in options:
            options.append(channel)
    return options


# -- opt-out and addresses ------------------------------------------------------------------


def opted_out(contact: Contact, channel: str) -> str | None:
    """Why `contact` gets no automatic message on `channel`, if they opted out of it."""
    if contact.has_opted_out(channel):
        return f"opted out of automatic messages on {channel}"
    return None


def unreachable(contact: Contact, channel: str) -> str | None:
    """Why a message on `channel` has no address of `contact` to go to, if it has none."""
    kind = IDENTITY_KIND.get(channel)
    if kind is None:
        return f"campaigns cannot send {channel} messages"
    if not any(identity["kind"] == kind for identity in contact.identities):
        return f"no {IDENTITY_LABEL[kind]} to send {channel} to"
    return None


def personal_of(rendered: RenderedMessage) -> dict[str, str]:
    """The body of a send request: subject, text and HTML (empty strings, never None)."""
    return {
        "subject": rendered.subject or "",
        "text": rendered.text or "",
        "html": rendered.html or "",
    }


# -- the composer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why no message is composed (the text rules and campaigns record as the skip reason)."""

    reason: str


@dataclass(frozen=True)
class Composed:
    """A message ready to be recorded: its slot of the daily limit is taken."""

    contact_id: UUID
    channel: str
    personal: dict[str, str]
    message_id: UUID


class OutboundComposer:
    """Composes automatic messages for contacts; one instance per process, thread-safe."""

    def __init__(
        self,
        aggregates: AggregateReader,
        facts: FactSource,
        views: ViewReader,
        per_day: int,
        unsubscribe_url: Callable[[str], str] | None = None,
        consent_urls: Callable[[str], Mapping[str, str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.aggregates = aggregates
        self.fact_source = facts
        self.views = views
        self.per_day = per_day
        self.unsubscribe_url = unsubscribe_url
        self.consent_urls = consent_urls
        self.clock = clock
        self._lock = threading.Lock()
        # Per lock stripe, per contact: message id -> when, for the slots this process took
        # that the views do not show yet. Counted by id with the views' messages, none twice.
        self._locks = [threading.Lock() for _ in range(STRIPES)]
        self._pending: list[dict[str, dict[str, float]]] = [{} for _ in range(STRIPES)]
        self._templates: dict[tuple[UUID, int], Template] = {}

    # -- contacts -----------------------------------------------------------------------------

    def contact(self, contact_id: UUID) -> Contact:
        """The contact, or the one its merges lead to (at most `MAX_MERGE_HOPS` hops)."""
        return survivor(self._contact(contact_id), self._contact)

    def _contact(self, contact_id: UUID) -> Contact:
        contact: Contact = self.aggregates.get(contact_id)
        return contact

    def channels_for(
        self, contact_ids: Sequence[str], wanted: str, fallback: str = "email"
    ) -> dict[str, str]:
        """Each contact's channel for a campaign: `wanted`, or for "same" `choose_channel`
        with every address kind (`fallback` when the contact has none)."""
        if wanted != "same":
            return dict.fromkeys(contact_ids, wanted)
        if not contact_ids:
            return {}
        reach = self.reach_of(contact_ids)
        return {
            contact_id: choose_channel(
                wanted, reach.get(contact_id) or ContactReach(contact_id), None, CAMPAIGN_FALLBACK
            )
            or fallback
            for contact_id in contact_ids
        }

    def reach_of(self, contact_ids: Sequence[str]) -> dict[str, ContactReach]:
        """Where each of the contacts can be reached, read from the views at once."""
        written: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for activity in inbound_channels(self.views, contact_ids):
            written[activity.contact_id].append((activity.last_inbound_at, activity.channel))
        kinds = identity_kinds(self.views, contact_ids)
        return {
            contact_id: ContactReach(
                contact_id,
                tuple(channel for _, channel in sorted(written.get(contact_id, ()), reverse=True)),
                tuple(sorted(kinds.get(contact_id, ()))),
            )
            for contact_id in contact_ids
        }

    # -- templates ----------------------------------------------------------------------------

    def template(self, template_id: UUID, version: int | None = None) -> Template:
        """A template, at `version` if given (fixed versions are kept once read)."""
        if version is None:
            current: Template = self.aggregates.get(template_id)
            return current
        key = (template_id, version)
        with self._lock:
            cached = self._templates.get(key)
        if cached is not None:
            return cached
        template: Template = self.aggregates.get(template_id, version=version)
        with self._lock:
            self._templates[key] = template
        return template

    def facts(
        self,
        contact_id: UUID,
        kind: str,
        event_facts: Mapping[str, Any],
        cause_key: str | None = None,
        conversation_id: UUID | None = None,
    ) -> dict[str, Any]:
        """What a template sees when it is rendered outside a rule (a campaign, a preview)."""
        trigger = TriggerEvent(
            names=(kind,),
            cause_key=cause_key or kind,
            occurred_at=datetime.now(UTC),
            facts=dict(event_facts),
            contact_id=contact_id,
            conversation_id=conversation_id,
        )
        return self.fact_source.facts(trigger)

    def render(
        self,
        variants: TemplateVariants,
        channel: str,
        contact_id: UUID | str,
        facts: Mapping[str, Any],
    ) -> RenderedMessage:
        """The template's variant for `channel` rendered with `facts` and the contact's
        unsubscribe link (raises `TemplateError`)."""
        context = dict(facts)
        if self.unsubscribe_url is not None:
            context["unsubscribe_url"] = self.unsubscribe_url(str(contact_id))
        if self.consent_urls is not None:
            context["consent_urls"] = self.consent_urls(str(contact_id))
        return render(variants, channel, context)

    def preview(
        self,
        variants: TemplateVariants,
        channel: str,
        contact_id: UUID,
        conversation_id: UUID | None = None,
    ) -> RenderedMessage:
        """A template rendered for one contact as a rule would send it; nothing is sent."""
        facts = self.facts(contact_id, "preview", {"type": "preview"}, None, conversation_id)
        return self.render(variants, channel, contact_id, facts)

    # -- a rule's message ---------------------------------------------------------------------

    def rule_message(
        self,
        template: str,
        wanted: str,
        facts: Mapping[str, Any],
        message_id: UUID,
    ) -> Composed | Refusal:
        """A `send_template` action's message: the contact of `facts`, the channel, opt-out,
        the daily limit, the rendered template `template` (a slug).

        `message_id` is the id the message will be recorded with (the firing's effect id):
        the slot taken for it is known by that id once the views show the message.
        Raises `TemplateError` (the slot is given back then).
        """
        card = facts.get("contact") or {}
        if not card:
            return Refusal(NO_CONTACT)
        conversation = facts.get("conversation") or {}
        channel = choose_channel(
            wanted, ContactReach.of_card(card), conversation.get("channel") or None
        )
        if channel is None:
            return Refusal(NO_CHANNEL)
        contact = self.contact(UUID(str(card["id"])))
        why = opted_out(contact, channel)
        if why is not None:
            return Refusal(why)
        contact_key = str(contact.id)
        if not self.take_slot(contact_key, message_id):
            return Refusal(self.limit_reason)
        try:
            variants = self.template(template_id_for(template)).variants
            rendered = self.render(variants, channel, contact.id, facts)
        except BaseException:
            self.release_slot(contact_key, message_id)
            raise
        return Composed(contact.id, channel, personal_of(rendered), message_id)

    # -- the daily limit of automatic messages ------------------------------------------------

    @property
    def limit_reason(self) -> str:
        return f"rate limit: {self.per_day} automatic messages a day"

    def automatic_today(self, contact_id: str) -> int:
        """Automatic messages to the contact in the last 24 hours: those the views show (rule
        messages and campaign messages) and those this process took a slot for that the
        views do not show yet, each message once."""
        with self._stripe(contact_id) as pending:
            shown = self._shown(contact_id)
            return len(shown) + len(self._not_shown(pending, contact_id, shown))

    def take_slot(self, contact_id: str, message_id: UUID) -> bool:
        """Take one of the contact's daily automatic messages for `message_id`; False (and
        nothing taken) when the limit is reached. Taking the same message again is free."""
        key = str(message_id)
        with self._stripe(contact_id) as pending:
            shown = self._shown(contact_id)
            mine = self._not_shown(pending, contact_id, shown)
            if key in shown or key in mine:
                return True
            if len(shown) + len(mine) >= self.per_day:
                return False
            pending.setdefault(contact_id, {})[key] = self.clock()
            return True

    def release_slot(self, contact_id: str, message_id: UUID) -> None:
        """Give a slot back: its message will not be sent after all."""
        with self._stripe(contact_id) as pending:
            mine = pending.get(contact_id)
            if mine is not None:
                mine.pop(str(message_id), None)
                if not mine:
                    del pending[contact_id]

    @contextmanager
    def _stripe(self, contact_id: str) -> Iterator[dict[str, dict[str, float]]]:
        """The pending slots of the contacts that share `contact_id`'s lock, with it held.

        A contact's count and its new slot are decided under one lock (so two senders cannot
        both take the last slot), while other contacts go on under their own stripes.
        """
        index = hash(contact_id) % STRIPES
        with self._locks[index]:
            yield self._pending[index]

    def _shown(self, contact_id: str) -> frozenset[str]:
        """The ids of the contact's automatic messages of the last 24 hours in the views."""
        since = datetime.fromtimestamp(self.clock(), UTC) - timedelta(seconds=DAY_SECONDS)
        return rule_message_ids_since(self.views, contact_id, since) | campaign_message_ids_since(
            self.views, contact_id, since
        )

    def _not_shown(
        self, pending: dict[str, dict[str, float]], contact_id: str, shown: frozenset[str]
    ) -> dict[str, float]:
        """The contact's slots of the last 24 hours that the views do not show yet (its stripe
        held). Those they show are forgotten: the views count them from now on."""
        mine = pending.get(contact_id)
        if mine is None:
            return {}
        cutoff = self.clock() - DAY_SECONDS
        for key, at in list(mine.items()):
            if key in shown or at < cutoff:
                del mine[key]
        if not mine:
            del pending[contact_id]
        return mine
