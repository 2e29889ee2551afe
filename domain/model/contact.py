"""The Contact aggregate: one person, however many channels they write from.

Personal data (the name, identity values, personal attribute values) travels
only inside each event's ``personal`` field, so that a later per-contact cipher
can encrypt exactly that part and forgetting a client never breaks the log.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.contact_ids import new_contact_id
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.money import DEFAULT_CURRENCY, Money


class Lifecycle(StrEnum):
    LEAD = "lead"
    QUALIFIED = "qualified"
    CUSTOMER = "customer"
    CHURNED = "churned"


SOURCE_KEYS = (
    "channel",
    "form",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer",
    "acquisition_cost",
)
"""The attribution a source keeps: where an inquiry came from (the channel, the web form's
slug, the campaign's utm_* tags, the referring page) and what acquiring it cost."""
COST_CURRENCY_KEY = "acquisition_currency"
"""An input-only key: the currency of an `acquisition_cost` given as a bare number. It is
folded into the cost's money form and never stored on its own."""
MAX_SOURCE_TEXT = 500
MAX_COST_DECIMALS = 10  # far below a kopeck, far above what a float client means
MAX_TAG_LENGTH = 64
MAX_REASON_LENGTH = 500
# A merge chain longer than this is a bug (merges refuse merged contacts); stop rather than loop.
MAX_MERGE_HOPS = 10


def clean_source(source: dict[str, Any] | None) -> dict[str, Any]:
    """Keep the known attribution keys; the cost becomes money (``{"amount", "currency"}``).

    The cost may come as that money form, or as a number or numeric string with its
    currency in `acquisition_currency` (else `DEFAULT_CURRENCY`). It is stored as a decimal
    string, never a float, so a figure like 0.1 reads back exactly in every report.
    """
    given = dict(source or {})
    currency = given.pop(COST_CURRENCY_KEY, None)
    cleaned: dict[str, Any] = {}
    for key, value in given.items():
        if key not in SOURCE_KEYS:
            raise InvalidInput(f"source.{key}", "unknown source field")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if key == "acquisition_cost":
            cleaned[key] = clean_cost(value, currency).state()
        else:
            cleaned[key] = str(value)[:MAX_SOURCE_TEXT]
    if currency not in (None, "") and "acquisition_cost" not in cleaned:
        raise InvalidInput(f"source.{COST_CURRENCY_KEY}", "a currency needs an acquisition_cost")
    return cleaned


def clean_cost(value: Any, currency: Any = None) -> Money:
    """The acquisition cost as non-negative money; `InvalidInput` names what is wrong."""
    field = "source.acquisition_cost"
    if isinstance(value, dict):
        cost = Money.from_state(value, field)
        if currency not in (None, "") and str(currency).strip().upper() != cost.currency:
            raise InvalidInput(
                f"source.{COST_CURRENCY_KEY}", "differs from the currency of acquisition_cost"
            )
    else:
        if isinstance(value, list | tuple | set):  # str() of a one-item list must not parse
            raise InvalidInput(field, "expected a number")
        code = DEFAULT_CURRENCY if currency in (None, "") else str(currency)
        cost = Money.of(value, code, field)
    if cost.amount < 0:
        raise InvalidInput(field, "must not be negative")
    amount = cost.amount
    if -int(amount.as_tuple().exponent) > MAX_COST_DECIMALS:
        # A float's binary noise (0.1 + 0.2 = 0.30000000000000004) or a string of a
        # thousand decimals: rounded, then written without the trailing zeros.
        amount = amount.quantize(Decimal(1).scaleb(-MAX_COST_DECIMALS), ROUND_HALF_UP).normalize()
    # Plain notation (no exponent) and no negative zero: the string a person would write.
    amount = Decimal(0) if amount.is_zero() else amount
    return Money(Decimal(format(amount, "f")), cost.currency)


def upcast_cost(source: dict[str, Any]) -> None:
    """An old source's bare-number cost (a float of no currency) as money in RUB.

    Costs were recorded before money had a currency; Threadline's users then were
    Russian businesses, so the README documents them as roubles. A cost no number can
    hold (NaN or infinity, which the old cleaning let through) is dropped, not guessed.
    """
    value = source.get("acquisition_cost")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value):
        del source["acquisition_cost"]
        return
    source["acquisition_cost"] = {
        "amount": str(Decimal(repr(value))),
        "currency": DEFAULT_CURRENCY,
    }


def first_name_of(display_name: str, identities: Iterable[str] = ()) -> str:
    """The name to greet a contact by, or "" when they are known only by an address.

    A contact created from an inbound message without a sender name is named by
    its phone number, e-mail address or handle, so the first word of
    `display_name` would greet "Hi +14155550142!". A first name is the first word of a
    name that is none of the contact's identity values and carries no digit, ``@`` or
    ``://`` (people's names do not; numbers, addresses, handles and URLs do).
    """
    name = " ".join(str(display_name or "").split())
    if not name:
        return ""
    folded = name.casefold()
    if any(folded == " ".join(str(v).split()).casefold() for v in identities):
        return ""
    first = name.split(" ", 1)[0].strip(",;")
    if not first or "@" in first or "://" in first or any(c.isdigit() for c in first):
        return ""
    return first


def clean_lifecycle(value: str) -> Lifecycle:
    """The lifecycle stage named `value`; `InvalidInput` names the stages otherwise."""
    try:
        return Lifecycle(value)
    except ValueError:
        raise InvalidInput("lifecycle", f"one of {[v.value for v in Lifecycle]}") from None


def clean_tag(tag: str) -> str:
    cleaned = " ".join(str(tag).split()).lower()
    if not cleaned or len(cleaned) > MAX_TAG_LENGTH:
        raise InvalidInput("tags", f"a tag has 1 to {MAX_TAG_LENGTH} characters")
    return cleaned


class Contact(Aggregate):
    """A client or lead, with identities, typed attributes, tags, owner and source."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        """A new contact's id: one whose key is stored already (`contact_ids`)."""
        return new_contact_id()

    class ContactCreated(Aggregate.Created):
        """A contact came to be. Version 2 keeps the source's acquisition cost as money
        (``{"amount": "12.5", "currency": "RUB"}``); version 1 had a bare float, read as RUB."""

        class_version = 2
        personal: dict[str, Any]
        lifecycle: str
        source: dict[str, Any]
        responsible_id: UUID | None
        actor: str
        correlation_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_cost(state.get("source") or {})

    @event(ContactCreated)
    def __init__(
        self,
        personal: dict[str, Any],
        lifecycle: str,
        source: dict[str, Any],
        responsible_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.display_name: str = personal.get("display_name", "")
        self.lifecycle = lifecycle
        self.source = source
        self.responsible_id = responsible_id
        # The identities a contact is created with travel in the creation event itself.
        self.identities: list[dict[str, str]] = list(personal.get("identities", []))
        self.attributes: dict[str, Any] = {}
        self.tags: list[str] = []
        self.company_id: UUID | None = None
        self.merged_into: UUID | None = None
        self.opted_out: list[str] = []
        self.absorbed: list[UUID] = []  # the duplicates merged into this contact
        self.forgotten = False
        # purpose -> the policy text version the client agreed to (withdrawn: absent)
        self.consents: dict[str, int] = {}

    def has_identity(self, kind: str, value: str) -> bool:
        return any(i["kind"] == kind and i["value"] == value for i in self.identities)

    class ContactIdentityAdded(Aggregate.Event):
        kind: str
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    @event(ContactIdentityAdded)
    def add_identity(
        self, kind: str, personal: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        if "value" in personal:  # a forgotten contact's identities no longer open
            self.identities.append({"kind": kind, "value": personal["value"]})

    class ContactRenamed(Aggregate.Event):
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    @event(ContactRenamed)
    def rename(self, personal: dict[str, Any], actor: str, correlation_id: str) -> None:
        self.display_name = personal.get("display_name", "")

    class ContactAttributesChanged(Aggregate.Event):
        values: dict[str, Any]
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    @event(ContactAttributesChanged)
    def change_attributes(
        self,
        values: dict[str, Any],
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        for key, value in {**values, **personal}.items():
            if value is None:
                self.attributes.pop(key, None)
            else:
                self.attributes[key] = value

    class ContactTagsAdded(Aggregate.Event):
        tags: list[str]
        actor: str
        correlation_id: str

    @event(ContactTagsAdded)
    def add_tags(self, tags: list[str], actor: str, correlation_id: str) -> None:
        self.tags = sorted(set(self.tags) | set(tags))

    class ContactTagsRemoved(Aggregate.Event):
        tags: list[str]
        actor: str
        correlation_id: str

    @event(ContactTagsRemoved)
    def remove_tags(self, tags: list[str], actor: str, correlation_id: str) -> None:
        self.tags = sorted(set(self.tags) - set(tags))

    class ContactResponsibleAssigned(Aggregate.Event):
        responsible_id: UUID | None
        actor: str
        correlation_id: str

    @event(ContactResponsibleAssigned)
    def assign_responsible(
        self, responsible_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self.responsible_id = responsible_id

    class ContactLifecycleChanged(Aggregate.Event):
        lifecycle: str
        actor: str
        correlation_id: str

    @event(ContactLifecycleChanged)
    def change_lifecycle(self, lifecycle: str, actor: str, correlation_id: str) -> None:
        self.lifecycle = lifecycle

    class ContactCompanyLinked(Aggregate.Event):
        company_id: UUID | None
        actor: str
        correlation_id: str

    @event(ContactCompanyLinked)
    def link_company(self, company_id: UUID | None, actor: str, correlation_id: str) -> None:
        self.company_id = company_id

    def absorb_duplicate(self, duplicate: Contact, actor: str, correlation_id: str) -> None:
        """Merge `duplicate` into this contact: this one takes over what the duplicate has
        and it does not (identities, tags, attribute values, responsible, source), and the
        duplicate points here from then on. A contact already merged takes part in no merge.
        """
        for contact in (self, duplicate):
            if contact.merged_into is not None:
                raise Conflict(
                    f"contact {contact.id} was already merged into {contact.merged_into}"
                )
        new_identities = [
            i for i in duplicate.identities if not self.has_identity(i["kind"], i["value"])
        ]
        missing = {k: v for k, v in duplicate.attributes.items() if k not in self.attributes}
        self.absorb(
            duplicate.id,
            [t for t in duplicate.tags if t not in self.tags],
            {},
            # Which attributes are personal is the registry's business; all taken-over
            # values travel as personal so nothing personal can leak outside that field.
            {"identities": new_identities, "attributes": missing},
            duplicate.responsible_id if self.responsible_id is None else None,
            duplicate.source if not self.source else {},
            actor,
            correlation_id,
        )
        for purpose, version in sorted(duplicate.consents.items()):
            if not self.has_consent(purpose, version):  # the person agreed: it stays so
                self.give_consent(purpose, version, f"merge:{duplicate.id}", actor, correlation_id)
        duplicate.merge_into(self.id, actor, correlation_id)

    class ContactMerged(Aggregate.Event):
        survivor_id: UUID
        actor: str
        correlation_id: str

    @event(ContactMerged)
    def merge_into(self, survivor_id: UUID, actor: str, correlation_id: str) -> None:
        """This contact was a duplicate; from now on everything of it belongs to the survivor.

        The contact is not deleted: its history stays in the log and its identity
        claims keep pointing here, so resolution follows `merged_into` to the survivor.
        """
        self.merged_into = survivor_id

    class ContactAbsorbed(Aggregate.Event):
        """The survivor's side of a merge. Version 2: the source's cost is money (see
        `ContactCreated`); version 1's bare float reads as RUB."""

        class_version = 2
        duplicate_id: UUID
        tags: list[str]
        values: dict[str, Any]
        personal: dict[str, Any]
        responsible_id: UUID | None
        source: dict[str, Any]
        actor: str
        correlation_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_cost(state.get("source") or {})

    @event(ContactAbsorbed)
    def absorb(
        self,
        duplicate_id: UUID,
        tags: list[str],
        values: dict[str, Any],
        personal: dict[str, Any],
        responsible_id: UUID | None,
        source: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        """The survivor's side of a merge: what it takes over from the duplicate.

        `personal` carries the duplicate's identities (``identities``) and the
        personal attribute values it contributes (``attributes``).
        """
        self.absorbed.append(duplicate_id)
        for identity in personal.get("identities", []):
            if not self.has_identity(identity["kind"], identity["value"]):
                self.identities.append({"kind": identity["kind"], "value": identity["value"]})
        self.tags = sorted(set(self.tags) | set(tags))
        self.attributes.update(values)
        self.attributes.update(personal.get("attributes", {}))
        if responsible_id is not None:
            self.responsible_id = responsible_id
        if source:
            self.source = source

    class ContactOptedOut(Aggregate.Event):
        channel: str
        reason: str
        actor: str
        correlation_id: str

    @event(ContactOptedOut)
    def opt_out(self, channel: str, reason: str, actor: str, correlation_id: str) -> None:
        """No automatic message goes to this contact on `channel` (``*``: on any channel)."""
        self.opted_out = sorted({*self.opted_out, channel})

    class ContactOptedIn(Aggregate.Event):
        """Automatic messages may go to the contact on `channel` again, and why.

        Version 1 had no reason (no command ever appended it); a person now opts a
        client back in only with a reason, which the upcaster leaves empty for old events.
        """

        channel: str
        reason: str
        actor: str
        correlation_id: str
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.setdefault("reason", "")

    def opt_in(self, channel: str, reason: str, actor: str, correlation_id: str) -> None:
        """Undo an opt-out; refused without a reason or when `channel` is not opted out.

        A STOP is the client's word: only an explicit, recorded reason (the client asked
        again, by phone) may override it, so the check lives here rather than in callers.
        """
        cleaned = " ".join(str(reason).split())
        if not cleaned:
            raise InvalidInput("reason", "say why the client is opted back in")
        if len(cleaned) > MAX_REASON_LENGTH:
            raise InvalidInput("reason", f"is limited to {MAX_REASON_LENGTH} characters")
        if channel not in self.opted_out:
            raise InvalidInput("channel", "the client is not opted out on this channel")
        self._opted_in(channel, cleaned, actor, correlation_id)

    @event(ContactOptedIn)
    def _opted_in(self, channel: str, reason: str, actor: str, correlation_id: str) -> None:
        self.opted_out = sorted(set(self.opted_out) - {channel})

    def has_opted_out(self, channel: str) -> bool:
        return "*" in self.opted_out or channel in self.opted_out

    class ContactConsentGiven(Aggregate.Event):
        """The client agreed to a purpose's policy (`consent_policy`), in `text_version` of
        its text, `via` a form (``form:<slug>``), a link (``link``) or an operator who has
        it in writing (``operator``)."""

        purpose: str
        text_version: int
        via: str
        actor: str
        correlation_id: str

    @event(ContactConsentGiven)
    def give_consent(
        self, purpose: str, text_version: int, via: str, actor: str, correlation_id: str
    ) -> None:
        self.consents[purpose] = text_version

    def has_consent(self, purpose: str, text_version: int) -> bool:
        """Whether the client agreed to this version of the purpose's text (or a later one)."""
        return self.consents.get(purpose, 0) >= text_version

    class ContactConsentWithdrawn(Aggregate.Event):
        """The client withdrew a consent (152-FZ art. 9 p. 2: at any time); the reason, if
        they gave one, is theirs (`personal`)."""

        purpose: str
        via: str
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    @event(ContactConsentWithdrawn)
    def withdraw_consent(
        self, purpose: str, via: str, personal: dict[str, Any], actor: str, correlation_id: str
    ) -> None:
        self.consents.pop(purpose, None)

    class ContactForgotten(Aggregate.Event):
        """The client asked to be forgotten (GDPR art. 17, 152-FZ art. 21): the contact's key
        is destroyed, so its events' personal parts no longer open, and every view scrubs
        what it kept of them. `request_id` is the contact the request named (the survivor
        of a merge: its duplicates are forgotten with it)."""

        request_id: UUID
        actor: str
        correlation_id: str

    @event(ContactForgotten)
    def forget(self, request_id: UUID, actor: str, correlation_id: str) -> None:
        self.forgotten = True
        self.display_name = ""
        self.identities = []
        self.attributes = {}


def survivor(
    contact: Contact, load: Callable[[UUID], Contact], max_hops: int = MAX_MERGE_HOPS
) -> Contact:
    """The contact that `contact` now lives on: itself, or where its merges lead.

    A merged duplicate keeps its id (identity claims and old threads point at it), so
    whoever acts for a contact follows `merged_into` first. `load` reads a contact by
    id (``lambda i: unit.get(i, Contact)`` in a command, ``repository.get`` outside
    one). At most `max_hops` merges are followed: a chain that long (or a cycle) can
    only come from a bug, and stopping there beats looping forever.
    """
    hops = 0
    while contact.merged_into is not None and hops < max_hops:
        contact = load(contact.merged_into)
        hops += 1
    return contact
