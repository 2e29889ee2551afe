"""Commands of the channels issue: inboxes, delivery outcomes, calls, merging contacts.

A mixin of `Threadline` so that `application.py` stays readable; every method
here submits a command to the same group-commit writer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.infrastructure.group_commit import Committed, GroupCommitWriter
from threadline.domain.infrastructure.unit_of_work import IdentityMap, UnitOfWork
from threadline.domain.model.contact import Contact
from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.identities import identity_claim_id
from threadline.domain.model.identity_claim import IdentityClaim
from threadline.domain.model.inbox import Inbox, clean_slug, inbox_id_for
from threadline.domain.model.message import CallOutcome, DeliveryState, Direction, Message

PROVIDER_REFERENCE_KIND = "provider"
MISSED_CALL_STATUSES = frozenset({"busy", "no-answer", "canceled", "failed"})
FINAL_CALL_STATUSES = MISSED_CALL_STATUSES | {"completed"}


PROVIDER_PROGRESS = {"queued": 0, "sent": 1, "delivered": 2}
"""How far an outbound message got at its provider; reports only ever move it forward."""


def provider_reference(channel: str, provider_id: str) -> tuple[str, str]:
    """The claim kind/value that maps a provider's id (a Twilio SID) back to our message."""
    return f"{PROVIDER_REFERENCE_KIND}:{channel}", provider_id


class ChannelCommands:
    writer: GroupCommitWriter

    # -- inboxes ----------------------------------------------------------------------------

    def configure_inbox(
        self,
        slug: str,
        channel: str,
        name: str,
        settings: dict[str, Any],
        secret_names: list[str],
        actor: str,
        enabled: bool | None = None,
        create_only: bool = False,
    ) -> Committed[UUID]:
        """Create the inbox or change it; records nothing when nothing changed."""
        slug = clean_slug(slug)
        if not name.strip():
            raise InvalidInput("name", "must not be empty")
        inbox_id = inbox_id_for(slug)
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            inbox = unit.find(inbox_id, Inbox)
            if inbox is None:
                inbox = unit.add(
                    Inbox(
                        id=inbox_id,
                        slug=slug,
                        channel=channel,
                        name=name.strip(),
                        settings=settings,
                        secret_names=secret_names,
                        actor=actor,
                        correlation_id=correlation_id,
                    )
                )
            else:
                if create_only:
                    raise Conflict(f"an inbox with slug {slug!r} exists")
                if inbox.channel != channel:
                    raise InvalidInput("channel", f"inbox {slug} is a {inbox.channel} inbox")
                if (
                    inbox.name != name.strip()
                    or inbox.settings != settings
                    or inbox.secret_names != sorted(secret_names)
                ):
                    inbox.reconfigure(name.strip(), settings, secret_names, actor, correlation_id)
            if enabled is not None and enabled != inbox.enabled:
                inbox.set_enabled(enabled, actor, correlation_id)
            return inbox_id

        return self.writer.submit(command)

    # -- delivery ---------------------------------------------------------------------------

    def start_delivery_attempt(self, message_id: UUID, actor: str) -> Committed[int | None]:
        """Record an attempt before calling the provider; None when the message must not be
        sent (already delivered, failed for good, or an earlier attempt has no outcome)."""

        def command(unit: UnitOfWork) -> int | None:
            message = unit.get(message_id, Message)
            if message.direction != Direction.OUTBOUND.value:
                raise InvalidInput("message_id", "only outbound messages are delivered")
            if message.state != DeliveryState.REQUESTED.value or message.attempt_open:
                return None
            attempt = message.attempts + 1
            message.start_attempt(attempt, actor, message_correlation(message))
            return attempt

        return self.writer.submit(command)

    def record_delivered(
        self,
        message_id: UUID,
        provider_id: str,
        actor: str,
        channel: str = "",
        status: str = "sent",
    ) -> Committed[None]:
        """The provider took the message; `status` is its word then (`sent` or `queued`)."""

        def command(unit: UnitOfWork) -> None:
            message = unit.get(message_id, Message)
            if message.state == DeliveryState.DELIVERED.value:
                return
            correlation_id = message_correlation(message)
            message.mark_delivered(provider_id, actor, correlation_id, status)
            kind, value = provider_reference(channel or message.channel, provider_id)
            if not unit.exists(identity_claim_id(kind, value)):
                unit.add(IdentityClaim.claim(kind, value, message.id, actor, correlation_id))

        return self.writer.submit(command)

    def record_delivery_failed(
        self,
        message_id: UUID,
        reason: str,
        permanent: bool,
        actor: str,
        retry_at: datetime | None = None,
        problem: str = "",
    ) -> Committed[None]:
        """`reason` is the technical detail; `problem` the plain reason operators read."""

        def command(unit: UnitOfWork) -> None:
            message = unit.get(message_id, Message)
            if message.state == DeliveryState.FAILED.value:
                return
            message.mark_failed(
                reason[:1000], permanent, actor, message_correlation(message), retry_at, problem
            )

        return self.writer.submit(command)

    def message_for_provider_id(self, channel: str, provider_id: str) -> UUID | None:
        """Which of our messages a provider's id belongs to (for status callbacks)."""
        kind, value = provider_reference(channel, provider_id)
        claim = self._read_unit().find(identity_claim_id(kind, value), IdentityClaim)
        return None if claim is None else claim.owner_id

    def record_provider_status(
        self, message_id: UUID, status: str, reason: str, actor: str, problem: str = ""
    ) -> Committed[None]:
        """A provider's later word on an outbound message: sent, delivered, or failed after
        all. Reports come out of order (a `sent` after the `delivered`): a message only moves
        forward (queued, sent, delivered), so a late report records nothing."""

        def command(unit: UnitOfWork) -> None:
            message = unit.get(message_id, Message)
            correlation_id = message_correlation(message)
            if status in PROVIDER_PROGRESS:
                if message.state != DeliveryState.DELIVERED.value:
                    return  # failed already, or not handed over (yet): nothing to confirm
                reached = PROVIDER_PROGRESS.get(message.provider_status or "sent", 0)
                if PROVIDER_PROGRESS[status] > reached:
                    message.confirm_delivery(status, actor, correlation_id)
            elif (
                status in ("failed", "undelivered")
                and message.state != DeliveryState.FAILED.value
                and message.provider_status != "delivered"  # the handset has it already
            ):
                message.mark_failed(reason or status, True, actor, correlation_id, None, problem)

        return self.writer.submit(command)

    # -- calls ------------------------------------------------------------------------------

    def record_call_status(
        self,
        call_message_id: UUID,
        status: str,
        actor: str,
        duration: int | None = None,
        recording_url: str | None = None,
    ) -> Committed[str | None]:
        """Apply one call status callback; repeated callbacks record nothing new.

        Returns the outcome recorded, or None when the callback changed nothing.
        """

        def command(unit: UnitOfWork) -> str | None:
            call = unit.get(call_message_id, Message)
            correlation_id = message_correlation(call)
            if status in MISSED_CALL_STATUSES:
                if call.call_outcome == CallOutcome.MISSED.value:
                    return None
                call.miss_call(status, actor, correlation_id)
                return CallOutcome.MISSED.value
            if recording_url:
                outcome = CallOutcome.VOICEMAIL.value
            elif status in ("completed", "in-progress"):
                # A call already missed or sent to voicemail stays so; "completed" then only
                # brings the duration.
                kept = (CallOutcome.MISSED.value, CallOutcome.VOICEMAIL.value)
                outcome = (
                    call.call_outcome if call.call_outcome in kept else CallOutcome.ANSWERED.value
                )
            else:
                outcome = call.call_outcome or CallOutcome.RINGING.value
            if call.call_status == status and call.call_outcome == outcome and not recording_url:
                return None
            if call.call_status in FINAL_CALL_STATUSES and status not in FINAL_CALL_STATUSES:
                return None  # a late "ringing" after "completed" changes nothing
            call.update_call(status, outcome, duration, recording_url, actor, correlation_id)
            return outcome

        return self.writer.submit(command)

    # -- merging ----------------------------------------------------------------------------

    def merge_contacts(self, survivor_id: UUID, duplicate_id: UUID, actor: str) -> Committed[UUID]:
        """Fold `duplicate_id` into `survivor_id`; the duplicate's history stays in the log."""
        if survivor_id == duplicate_id:
            raise InvalidInput("other_id", "a contact cannot be merged with itself")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            survivor = unit.get(survivor_id, Contact)
            duplicate = unit.get(duplicate_id, Contact)
            for contact in (survivor, duplicate):
                if contact.merged_into is not None:
                    raise Conflict(
                        f"contact {contact.id} was already merged into {contact.merged_into}"
                    )
            new_identities = [
                i for i in duplicate.identities if not survivor.has_identity(i["kind"], i["value"])
            ]
            missing = {
                k: v for k, v in duplicate.attributes.items() if k not in survivor.attributes
            }
            survivor.absorb(
                duplicate.id,
                [t for t in duplicate.tags if t not in survivor.tags],
                {},
                # Which attributes are personal is the registry's business; all taken-over
                # values travel as personal so nothing personal can leak outside that field.
                {"identities": new_identities, "attributes": missing},
                duplicate.responsible_id if survivor.responsible_id is None else None,
                duplicate.source if not survivor.source else {},
                actor,
                correlation_id,
            )
            duplicate.merge_into(survivor.id, actor, correlation_id)
            return survivor_id

        return self.writer.submit(command)

    def _read_unit(self) -> UnitOfWork:
        """A unit of work for reading in the caller's thread (nothing is saved through it)."""
        return UnitOfWork(IdentityMap(self))  # type: ignore[arg-type]


def message_correlation(message: Message) -> str:
    """Delivery events share the correlation id of the request that caused them."""
    return message.correlation_id or str(message.id)
